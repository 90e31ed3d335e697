"""Stage 4b: train one autoencoder on a couple's faces (reused from the store when trained)."""

from dfmnist.faceswap.stage import NoFaces, train_couple
from dfmnist.gpus import claim_device
from dfmnist.storage.files import read_json, write_json
from dfmnist.storage.store import Store
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params, wc = snakemake.params, snakemake.wildcards
cfg = snakemake.config["faceswap"]  # device and checkpoint_every: how, never what
settings = {**params.train, "checkpoint_every": cfg["train"]["checkpoint_every"]}
with claim_device(cfg["device"], params.gpu_locks) as claim:
    log.info("%s on %s: %s, width %g, on %s", wc.autoencoder, wc.couple, settings,
             params.width, claim.label)
    try:
        trained = train_couple(wc.autoencoder, params.width, read_json(snakemake.input.faces_a),
                               read_json(snakemake.input.faces_b), settings,
                               Store(params.store), params.partial, device=claim.device,
                               coverage=params.coverage)
    except NoFaces as exc:  # a data problem: the couple's fakes become failure rows
        log.error("%s on %s: not trained: %s", wc.autoencoder, wc.couple, exc)
        write_json(snakemake.output[0], {"couple": wc.couple, "model": wc.autoencoder,
                                         "recipe": wc.recipe, "error": str(exc)})
        raise SystemExit(0) from None
log.info("%s: loss %.4f -> %.4f (%s)", trained["key"][:12], trained["first_loss"],
         trained["last_loss"], "trained" if trained["computed"] else "reused")
write_json(snakemake.output[0], {"couple": wc.couple, "recipe": wc.recipe, **trained})
