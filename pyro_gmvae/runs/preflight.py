"""Checks before a run is built, resumed or loaded: the device, the memory the model needs, the checkpoint's
state and shapes, the settings a resume may change, and the free-bits site and objective."""

import dataclasses

import torch

from ..config import TrainConfig
from ..errors import CheckpointError, ConfigError, DataError, DeviceError, check_choice
from ..inference import FreeBitsMessenger
from ..inference.cluster_inference import make_cluster_inference
from ..inference.local_params import LocalParams
from ..memory import check_memory, memory_bytes  # noqa: F401  (memory_bytes: runs' public name)
from ..models import build
from .checkpoint import read_config


def check_device(device):
    """A :class:`torch.device`, or a :class:`DeviceError` naming the fix."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"unknown device {device!r} ({e}); use cpu or cuda") from None
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {device!r} is not supported (pyro-gmvae runs on cpu and cuda); "
                          "use --device cpu or --device cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {device} was asked for but CUDA is not available on this machine; "
                          "use --device cpu")
    return dev


def check_training_state(state, run_dir):
    """Raise :class:`CheckpointError` unless ``state`` holds what resuming needs, of the right types."""
    problems = []
    if isinstance(state.get("epoch"), bool) or not isinstance(state.get("epoch"), int) or state["epoch"] < 0:
        problems.append(f"epoch {state.get('epoch')!r} is not a count of epochs")
    for key in ("model", "guide", "optim"):
        if not isinstance(state.get(key), dict):
            problems.append(f"{key} is missing")
    rng = state.get("rng")
    if not isinstance(rng, dict) or not {"torch", "numpy", "python"} <= set(rng):
        problems.append("rng (the random states) is missing")
    metrics = state.get("metrics")
    if metrics is not None and not (isinstance(metrics, list) and all(isinstance(r, dict) for r in metrics)):
        problems.append("metrics is not a list of rows")
    if problems:
        raise CheckpointError(f"the checkpoint in {run_dir} cannot be resumed: {'; '.join(problems)}; restore the "
                              "checkpoint.pt that pyro-gmvae wrote, or start over with --overwrite")


def _meta_build(model_config):
    """``(model, guide)`` on the meta device (nothing allocated), or None for a component that cannot be."""
    try:
        with torch.device("meta"):
            return build(model_config)
    except ConfigError:
        raise
    except Exception:  # a component that cannot be built on the meta device: no estimate
        return None


def check_model_size(model_config, device="cpu", *, run_dir=None):
    """Raise :class:`ConfigError` when training the model would need more memory than the device has:
    its parameters, their gradients and Adam's two moments, counted on the meta device (nothing allocated).
    With ``run_dir``, the model of that run is about to be loaded: its parameters and the checkpoint's copy."""
    built = _meta_build(model_config)
    if built is None:
        return
    model, guide = built
    num = sum(p.numel() for module in (model, guide) for p in module.parameters())
    itemsize = torch.finfo(torch.get_default_dtype()).bits // 8
    if run_dir is None:
        sizes = ["--latent-dim", "--num-clusters" if model_config.num_pseudo_inputs is None else "--num-pseudo-inputs",
                 *(["--flow-layers"] if model_config.flow_layers is not None else [])]
        check_memory(num * 4 * itemsize, device, f"the model has {num:,} parameters: training", "it holds them, "
                     f"their gradients and Adam's two moments; lower {', '.join(sizes)} or the network size")
    else:
        check_memory(num * 2 * itemsize, device, f"the model in {run_dir}/config.json (latent_dim "
                     f"{model_config.latent_dim}, num_clusters {model_config.num_clusters}) has {num:,} parameters: "
                     "loading it", "restore the config.json that came with the run, or use a device with more memory")


#: Copies of the enumerated ``(particles, clusters, batch, latent)`` tensors, and of the networks' activations,
#: that one training step holds at its peak (measured: about 9 and 4.5, the mixture, GMVAE, the hierarchy, the
#: VampPrior alike).
STEP_COPIES = (10, 5)


def _width(module):
    """The outputs of ``module``'s linear layers, summed (a convolution's are not counted: a lower bound)."""
    return 0 if module is None else sum(m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear))


def check_step_memory(model_config, train_config, num_datapoints):
    """Raise :class:`ConfigError` when one training step would need more memory than the device has: the
    enumerated densities of every particle, cluster, datapoint of a batch and latent dimension, the networks'
    activations of each particle, and the encoder's at a prior's pseudo-inputs (estimated; nothing allocated)."""
    built = _meta_build(model_config)
    if built is None:
        return
    model, guide = built
    decoder, encoder = _width(getattr(model, "decoder", None)), _width(getattr(guide, "encoder", None))
    heads = _width(guide) - encoder  # the guide's heads, a flow's networks included
    batch = min(train_config.batch_size, num_datapoints) * train_config.num_particles
    pseudo = getattr(getattr(model, "prior", None), "pseudo_inputs", None)
    enumerated = batch * model_config.num_clusters * model_config.latent_dim
    activations = batch * (decoder + encoder + heads) + (0 if pseudo is None else pseudo.shape[0] * encoder)
    itemsize = torch.finfo(torch.get_default_dtype()).bits // 8
    particles = "" if train_config.num_particles == 1 else f"{train_config.num_particles:,} particles x "
    clusters = "--num-clusters" if model_config.num_pseudo_inputs is None else "--num-pseudo-inputs"
    check_memory((STEP_COPIES[0] * enumerated + STEP_COPIES[1] * activations) * itemsize, train_config.device,
                 f"a training step ({particles}{model_config.num_clusters:,} components x a batch of "
                 f"{batch // train_config.num_particles:,})",
                 f"lower --num-particles, {clusters} or --batch-size")


def check_data_scale(dataset, train_config):
    """Refuse data so large that a batch's squared errors overflow float32 (above about 3.4e38): the loss is
    infinite from the first step, whatever the learning rate; the data's scale is the cause."""
    top = float(dataset.x.abs().max())
    batch = min(train_config.batch_size, dataset.num_datapoints)
    limit = (torch.finfo(torch.float32).max / (dataset.data_dim * batch)) ** 0.5
    if top > limit:
        raise DataError(f"the data reach {top:.3g} in absolute value: their squared errors, summed over a batch of "
                        f"{batch} datapoints x {dataset.data_dim} features, overflow float32 (above "
                        f"{limit:.3g} per value); standardise the data (each feature to mean 0 and standard deviation "
                        "1) or rescale them")


#: Training settings that only one cluster inference reads: name -> that inference.
INFERENCE_SETTINGS = {"temperature_start": "relaxed", "temperature_end": "relaxed", "temperature_decay": "relaxed"}


def check_settings_apply(model_config, train_config):
    """Refuse a setting changed from its default that the configuration would ignore (a temperature without the
    relaxed cluster inference), as a flag of another model is refused."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for name, inference in INFERENCE_SETTINGS.items():
        value = getattr(train_config, name)
        if value != defaults[name] and model_config.cluster_inference != inference:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{name}={value!r} ({flag}) applies to the {inference} cluster inference only, but "
                              f"this run's is {model_config.cluster_inference!r}, which would ignore it; drop it, "
                              f"or pass cluster_inference={inference!r} (--cluster-inference {inference})")


def check_compatible(state, model, guide, run_dir):
    """Raise :class:`CheckpointError` unless the checkpoint's tensors fit ``model`` and ``guide``."""
    for key, module in (("model", model), ("guide", guide)):
        expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.get(key, {}).items()}
        if expected != found:
            diff = sorted(set(expected.items()) ^ set(found.items()))[:3]
            raise CheckpointError(f"the checkpoint in {run_dir} was written for another model configuration "
                                  f"(first differences: {diff}); use the config.json that came with it")


def check_compatible_config(state, model_config, run_dir):
    """:func:`check_compatible` on the model of ``model_config`` built on the meta device: a config.json edited
    to ask for another model (a huge one included) is refused before its tensors are allocated."""
    built = _meta_build(model_config)
    if built is not None:
        check_compatible(state, *built, run_dir)


#: Training settings that may change when a run is resumed; the others would change its result.
RESUMABLE_CHANGES = ("epochs", "device")


def check_resume_config(run_dir, model_config, train_config):
    """Raise :class:`CheckpointError` unless the configs match the run's ``config.json``
    (``epochs`` and ``device`` may change)."""
    saved_model, saved_train, _ = read_config(run_dir)
    if saved_model != model_config:
        diff = {k: (v, getattr(model_config, k)) for k, v in saved_model.to_dict().items()
                if getattr(model_config, k) != v}
        raise CheckpointError(f"the run in {run_dir} was trained with another model configuration "
                              f"(saved vs given: {diff}); resume with the config.json that came with it")
    mine, theirs = train_config.to_dict(), saved_train.to_dict()
    diff = {k: (theirs[k], mine[k]) for k in mine if k not in RESUMABLE_CHANGES and mine[k] != theirs.get(k)}
    if diff:
        raise CheckpointError(f"resuming {run_dir} with other training settings would not continue the same run "
                              f"(saved vs given: {diff}); only {', '.join(RESUMABLE_CHANGES)} may change")


def check_free_bits_site(model, guide, train_config):
    """The free-bits site must be a cluster site of the model or a site of the guide (checked
    here, before training, rather than inside the first trace)."""
    if train_config.free_bits <= 0:
        return
    site = train_config.free_bits_site
    check_choice("free-bits site", site, set(model.cluster_sites) | set(guide.sites))
    if site in model.cluster_sites and train_config.free_bits_group != "site":
        raise ConfigError(f"free-bits group must be 'site' for the enumerated site {site!r}; "
                          "pass --free-bits-group site")


def check_free_bits_objective(model, guide, train_config, x):
    """Evaluate the constrained objective once on two datapoints, so that a site/group combination the
    handler refuses (e.g. per-dimension free bits on a latent with enumerated parents) fails before any
    file is written. Leaves the random state untouched."""
    if train_config.free_bits <= 0:
        return
    handler = FreeBitsMessenger(train_config.free_bits, train_config.free_bits_site, train_config.free_bits_group)
    with torch.random.fork_rng(), torch.no_grad(), LocalParams():  # the user's param store stays as it was
        try:
            strategy = make_cluster_inference(guide)  # the objective as trained (cluster_inference)
            strategy.make_elbo().loss(handler(strategy.model(model)), strategy.guide,
                                      x[:2].to(next(iter(model.parameters())).dtype))
        except ConfigError as e:
            raise ConfigError(str(e).split("\n")[0]) from None
