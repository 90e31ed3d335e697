# The embedded demo: real photos that ship inside installed packages, turned into
# VoxCeleb1-style source clips and phone-like driving videos of the ten actions.
# It stands in for VoxCeleb1 and the volunteers' videos; off when demo.enabled is false.

rule demo_source_clips:
    input:
        lambda w: demo_photo_input(config["demo"]["photos"][w.identity]),
    output:
        [
            f"{DEMO_SOURCES}/{{identity}}/{rel.split('/', 1)[1]}"
            for rel in demo_clip_relpaths(config, "_")
        ],
    params:
        spec=lambda w: config["demo"]["photos"][w.identity],
        demo={k: config["demo"][k] for k in ("videos_per_identity", "clips_per_video",
                                             "clip_seconds", "clip_fps", "seed")},
        faces=FACE_SCIENCE,
    log:
        f"{LOGS}/demo_source_clips/{{identity}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/demo_source_clips.py"


rule demo_driving_video:
    input:
        demo_photo_input(config["demo"]["driving_performer"]),
    output:
        DEMO_TAKE,
    params:
        demo={k: config["demo"][k] for k in ("driving_performer", "driving_width",
                                             "driving_height", "driving_fps",
                                             "driving_seconds", "seed")},
        faces=FACE_SCIENCE,
    log:
        f"{LOGS}/demo_driving_video/{{action}}/{{take}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/demo_driving_video.py"
