"""MkDocs hook: the configuration reference page, made from the schema and config.yaml at
every build (dfmnist.config.reference), so the site never shows a key that no longer exists."""

from pathlib import Path

from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[1]


def on_files(files, config):
    from dfmnist.config.reference import reference_markdown

    text = reference_markdown(REPO / "schemas" / "config.schema.yaml", REPO / "config.yaml")
    files.append(File.generated(config, "config-reference.md", content=text))
    return files
