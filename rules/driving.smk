# Stage 2: face-crop each raw driving take to 256x256 with a smoothed MTCNN track; the
# landmark track (crop coordinates) is saved beside the video.


rule crop_driving:
    input:
        lambda w: str(DRIVING[w.action][w.take]),
    output:
        video=f"{RESULTS}/driving/{{action}}/{{take}}.mp4",
        track=f"{RESULTS}/driving/{{action}}/{{take}}.landmarks.parquet",
    params:
        faces=config["faces"],
        driving=config["driving"],
    threads: 2
    log:
        f"{RESULTS}/logs/crop_driving/{{action}}/{{take}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/crop_driving.py"


rule driving_manifest:
    input:
        videos=[f"{RESULTS}/driving/{a}/{t}.mp4" for a, t in DRIVING_TAKES],
        tracks=[f"{RESULTS}/driving/{a}/{t}.landmarks.parquet" for a, t in DRIVING_TAKES],
    output:
        f"{RESULTS}/manifests/driving.parquet",
    params:
        takes=DRIVING_TAKES,
    log:
        f"{RESULTS}/logs/driving_manifest.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/driving_manifest.py"
