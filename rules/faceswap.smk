# Stage 4b: DFDM's face swaps (dfmnist.faceswap), when faceswap.models lists any. Per identity
# its face track and aligned training crops; per couple of identities and model one
# autoencoder training (`resources: gpu=1` on a GPU, like FOMM; the checkpoint is a store item,
# resumable from faceswap/partial/ after a crash); per couple and model the conversion of both
# identities' target clips. Changing one model's settings (faceswap.per_model) reruns only that
# model's jobs. The fakes join the liveness-filtered animations in fake/accepted.parquet.
# `faceswap_recipes` (with faceswap.recipe_figure, or as a target) trains the first couple with
# each recipe and draws one converted frame per model and recipe for the report.
rule faceswap_faces:
    input:
        SOURCES_MANIFEST,
    output:
        SWAP_FACES,
    params:
        crops=SWAP_CROPS,
        faces=FACE_SCIENCE,
        store=STORE,
    log:
        f"{LOGS}/faceswap_faces/{{identity}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/faceswap_faces.py"


rule faceswap_train:
    input:
        unpack(couple_faces),
    output:
        SWAP_MODEL,
    params:
        width=SWAP_SCIENCE["width"],
        coverage=SWAP_SCIENCE["coverage"],  # where a learned mask's target lies
        train=lambda wc: {**train_settings(SWAP_SCIENCE, wc.autoencoder), "recipe": wc.recipe},
        store=STORE,
        partial=SWAP_PARTIAL,
        gpu_locks=GPU_LOCKS,
    resources:
        gpu=SWAP_GPUS,
    threads: config["faceswap"]["threads"]
    log:
        f"{LOGS}/faceswap_train/{{recipe}}/{{autoencoder}}/{{couple}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/faceswap_train.py"


rule faceswap_convert:
    input:
        unpack(couple_faces),
        sources=SOURCES_MANIFEST,
        model=swap_model,
    output:
        fakes=SWAP_FAKES,
        failures=SWAP_FAILURES,
    params:
        convert=SWAP_CONVERT,
        store=STORE,
        gpu_locks=GPU_LOCKS,
    resources:
        gpu=SWAP_GPUS,
    threads: config["faceswap"]["threads"]
    log:
        f"{LOGS}/faceswap_convert/{{autoencoder}}/{{couple}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/faceswap_convert.py"


rule faceswap_recipes:
    input:
        unpack(first_couple_faces),
        sources=SOURCES_MANIFEST,
        models=recipe_models,
    output:
        report(REPORT_SWAP_RECIPES, caption="../report/faceswap_recipes.rst",
               category="Dataset", subcategory="Face-swap recipes"),
    params:
        convert=SWAP_CONVERT,
        store=STORE,
    log:
        f"{LOGS}/faceswap_recipes.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/faceswap_recipes.py"
