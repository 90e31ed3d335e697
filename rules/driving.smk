# Stage 2: face-crop each raw driving take to 256x256 with a smoothed MTCNN track; the
# landmark track (crop coordinates) is saved beside the video. Tracking is a checkpoint: a take
# with too few face frames is rejected there (reason in manifests/driving_failures.parquet)
# and never cropped, and the rest of the dataset still builds.


checkpoint track_driving:
    input:
        lambda w: str(DRIVING[w.action][w.take]),
    output:
        track=f"{RESULTS}/driving/tracks/{{action}}/{{take}}.parquet",
        info=f"{RESULTS}/driving/tracks/{{action}}/{{take}}.json",
    params:
        faces=config["faces"],
        driving=config["driving"],
    # one thread per take, takes side by side: the batched cascade gains most per thread
    # (bench/mtcnn_crop.py)
    threads: 1
    log:
        f"{RESULTS}/logs/track_driving/{{action}}/{{take}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/track_driving.py"


rule crop_driving:
    input:
        video=lambda w: str(DRIVING[w.action][w.take]),
        track=f"{RESULTS}/driving/tracks/{{action}}/{{take}}.parquet",
    output:
        video=f"{RESULTS}/driving/{{action}}/{{take}}.mp4",
        track=f"{RESULTS}/driving/{{action}}/{{take}}.landmarks.parquet",
    params:
        driving=config["driving"],
    threads: 1
    log:
        f"{RESULTS}/logs/crop_driving/{{action}}/{{take}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/crop_driving.py"


rule driving_manifest:
    input:
        unpack(accepted_driving),
        infos=[f"{RESULTS}/driving/tracks/{a}/{t}.json" for a, t in DRIVING_TAKES],
        raw_tracks=[f"{RESULTS}/driving/tracks/{a}/{t}.parquet" for a, t in DRIVING_TAKES],
    output:
        manifest=f"{RESULTS}/manifests/driving.parquet",
        failures=f"{RESULTS}/manifests/driving_failures.parquet",
    params:
        takes=DRIVING_TAKES,
        driving=config["driving"],
    log:
        f"{RESULTS}/logs/driving_manifest.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/driving_manifest.py"
