"""The configuration: checks beyond the JSON schema and the input layout it implies
(`checks`), and the reference page made from the schema (`reference`)."""
