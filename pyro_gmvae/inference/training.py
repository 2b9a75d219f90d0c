"""Training: SVI with ``TraceEnum_ELBO``, VaDE's pretraining + GMM initialisation, free bits.

:class:`Trainer` owns the optimiser and the random state, so that a run can be checkpointed at
the end of any epoch and resumed to the same result (``state_dict`` / ``load_state_dict``).
Files are the business of :mod:`pyro_gmvae.runs`; this module only computes.
"""

import dataclasses
import math
import sys
import time
import warnings

import pyro
import torch

from ..data import Dataset, validate_data
from ..data.binarize import binarize_epoch, binarize_static, check_binarizable
from ..errors import DataError, TrainingError
from ..evaluation.metrics import (active_clusters, cluster_information, clustering_scores, most_confident_accuracy,
                                  used_clusters)
from ..evaluation.responsibilities import cluster_marginals
from ..nn import use_autocast
from .callbacks import CollapseWarning, call, check_callbacks
from .cluster_inference import make_cluster_inference
from .distributed import World, check_jit, check_shards, global_mean, wrap
from .elbo import use_jit
from .free_bits import FreeBitsMessenger
from .local_params import LocalParams
from .minibatch import minibatch_epochs, permutation, progress_bar
from .objective import Objective, kl_warmup_beta, step_decay, training_objective  # noqa: F401
from .pretrain import pretrain_autoencoder
from .starts import START_ELBO_SAMPLES, best_start, run_start  # noqa: F401 (START_ELBO_SAMPLES: importable here)
from .state import (OPTIM_FORMAT, check_world_size, pyro_optim_state_to_torch,  # noqa: F401 (importable here)
                    rng_state, set_rng_state)

COLLAPSE_THRESHOLD = 0.01


class Trainer:
    """Fits ``model``/``guide`` to a :class:`~pyro_gmvae.data.Dataset` with a
    :class:`~pyro_gmvae.config.TrainConfig`.

    >>> import torch
    >>> from pyro_gmvae import ModelConfig, TrainConfig, build, Trainer, from_tensor
    >>> data = from_tensor(torch.rand(40, 6))
    >>> model, guide = build(ModelConfig(data_dim=6, num_clusters=2, latent_dim=2, network="toy"))
    >>> history = Trainer(model, guide, TrainConfig(epochs=2, batch_size=20, pretrain_epochs=1),
    ...                   progress=False).fit(data)
    >>> [row["epoch"] for row in history]
    [1, 2]

    ``callbacks``: objects whose ``on_train_begin``, ``on_pretrain_epoch_end``, ``on_epoch_end`` and
    ``on_train_end`` are called at those events (:mod:`pyro_gmvae.inference.callbacks`).
    """

    def __init__(self, model, guide, config, *, pretrain_epochs=0, progress=True, phases=None, callbacks=None):
        self.model, self.guide, self.config = model, guide, config
        # PyroModules look their parameters up by name in Pyro's param store: the trainer keeps its own
        # store (module-local parameters), so an earlier model of the same names cannot take the updates.
        self.local_params = LocalParams()
        self.world = World.current()
        check_jit(self.world, config)
        self.device = torch.device(config.device)
        self.model.to(self.device)
        self.guide.to(self.device)
        if config.compute_dtype == "bfloat16":
            use_autocast(self.model.decoder.net)
            use_autocast(self.guide.encoder)
        self.pretrain_epochs = config.pretrain_epochs if config.pretrain_epochs is not None else pretrain_epochs
        self.progress = progress
        self.phases = progress if phases is None else phases  # the line per phase, apart from the bars
        self._bar = None
        self.callbacks = check_callbacks(callbacks)
        self._collapse = CollapseWarning(COLLAPSE_THRESHOLD)  # once per run, not every epoch
        self._began = False
        self.epoch = 0
        self.pretrain_report = None
        self.free_bits = None
        # how the cluster is inferred (inference/cluster_inference.py): the model, guide and ELBO as trained
        self.cluster_inference = make_cluster_inference(guide, config)
        # the loss is traced (JitTraceEnum_ELBO) if config.jit says so, or by default where that is safe
        self.jit = use_jit(config, model, guide, distributed=self.world.distributed,
                           strategy=self.cluster_inference.name)
        train_model = self.cluster_inference.model(model)
        if config.free_bits > 0:
            # with several processes, the constraint is on the global batch's mean KL
            self.free_bits = FreeBitsMessenger(config.free_bits, config.free_bits_site, config.free_bits_group,
                                               reduce=global_mean(self.world) if self.world.distributed else None)
            train_model = self.free_bits(train_model)
        # the ELBO or the IWAE bound; the model and guide under the KL warm-up's handler, whose beta _step sets
        elbo, train_model, train_guide, self.kl_warmup = training_objective(config, self.cluster_inference,
                                                                            train_model, self.jit)
        # The objective as a module (Pyro's ELBOModule) and a plain torch optimiser, as Pyro's Lightning
        # example; DDP wraps the objective when torchrun started several processes (see fit).
        self.objective = Objective(model, self.cluster_inference.guide, elbo, train_model, scale=self.world.size,
                                   train_guide=train_guide)
        # each parameter once, also one that model and guide share (a prior that sees the encoder)
        self.params = list({id(p): p for m in (model, guide) for p in m.parameters()}.values())
        self.optim = torch.optim.Adam(self.params, lr=config.lr, eps=config.adam_eps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optim, step_decay(config))
        self._step_fn = self.objective
        self._train_model = train_model
        self._started = False
        self._traced = False  # the JIT's loss is compiled at the first step (_trace)

    # -- randomness and state -------------------------------------------------------------------
    def _seed_once(self):
        if not self._started:
            pyro.set_rng_seed(self.config.seed)
            self._started = True

    def _permutation(self, n, epoch):
        return permutation(n, torch.Generator().manual_seed(self.config.seed * 100003 + epoch), self.device)

    def state_dict(self):
        """The training state; with several processes, a collective call (every rank's random state)."""
        rngs = self.world.gather(rng_state())
        state = {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "guide": self.guide.state_dict(),
            "optim": {"format": OPTIM_FORMAT, "optimizer": self.optim.state_dict(),
                      "scheduler": self.scheduler.state_dict()},
            "rng": rngs[0],
            "world_size": self.world.size,
            "pretrain_report": self.pretrain_report,
        }
        if self.world.distributed:
            state["rng_ranks"] = rngs
        return state

    def load_state_dict(self, state):
        check_world_size(state, self.world)
        self.model.load_state_dict(state["model"])
        self.guide.load_state_dict(state["guide"])
        optim = state["optim"]
        if optim.get("format") != OPTIM_FORMAT:  # written by pyro.optim (pyro-gmvae before issue 12)
            optim = pyro_optim_state_to_torch(optim, self.model, self.guide)
        self.optim.load_state_dict(optim["optimizer"])
        self.scheduler.load_state_dict(optim["scheduler"])
        set_rng_state(state["rng_ranks"][self.world.rank] if self.world.distributed else state["rng"])
        self.epoch = state["epoch"]
        self.pretrain_report = state.get("pretrain_report")
        self._started = True

    # -- the start: pretraining, initialisation, warm-up -------------------------------------------------
    def pretrain_once(self, data, pretrained=None, pretrained_from=None):
        """The start of a new run, the one place pretraining is triggered: with ``pretrained`` (a state with
        ``model``, ``guide`` and ``pretrain_report``, from the run ``pretrained_from``) its weights are taken;
        otherwise, before the first epoch, with ``pretrain_epochs`` and no pretraining done yet,
        :meth:`pretrain` runs. Returns True when it pretrained (the caller may keep the weights)."""
        self._begin(data)
        if pretrained is not None:
            self.model.load_state_dict(pretrained["model"])
            self.guide.load_state_dict(pretrained["guide"])
            self.pretrain_report = dict(pretrained.get("pretrain_report") or {}, pretrained_from=str(pretrained_from))
            return False
        if self.epoch == 0 and self.pretrain_epochs and self.pretrain_report is None:
            self.pretrain(data)
            return True
        return False

    def pretrain(self, data, epochs=None):
        """VaDE's start, for any prior with ``init_from_gmm``: an autoencoder (``config.pretrain_recipe``) on
        the guide's ``z`` mean and the decoder; a mixture fitted to the codes (``config.init``) copied into
        the prior; optionally the ``q(z | x)`` scale set (``config.init_guide_scale``) and a warm-up with the
        cluster observed at the start's labels (``config.init_warmup_epochs``). No data label is read.
        Returns a report dict (see :mod:`pyro_gmvae.inference.pretrain`)."""
        with self.local_params:  # the warm-up runs the model and guide: their parameters are this trainer's
            return self._pretrain(data, epochs)

    def _pretrain(self, data, epochs):
        data = self._binary(self._on_device(data))
        self._seed_once()
        config = self.config
        epochs = self.pretrain_epochs if epochs is None else epochs
        batch_size = config.pretrain_batch_size or config.batch_size
        t0 = time.perf_counter()
        prior = self.model.prior
        if epochs and not hasattr(prior, "init_from_gmm") and not hasattr(prior, "init_from_data"):
            warnings.warn(f"pretraining is on ({epochs} epochs) but the prior {type(prior).__name__} has no "
                          "init_from_gmm(weights, means, scales), so no Gaussian mixture initialises it: only the "
                          "encoder and decoder are pretrained and the prior starts from its own initial values. "
                          "Give the prior an init_from_gmm method, or pass pretrain_epochs=0 (--pretrain-epochs 0)",
                          RuntimeWarning, stacklevel=2)
        self._say(f"pretraining the autoencoder: {epochs} epochs, recipe {config.pretrain_recipe}, "
                  f"batch {batch_size}")
        losses = pretrain_autoencoder(self.model, self.guide, data.x, epochs=epochs, batch_size=batch_size,
                                      lr=config.pretrain_lr, seed=config.seed, recipe=config.pretrain_recipe,
                                      progress=self.progress, on_epoch_end=self._start_epoch("pretrain"))
        # the loss of every epoch: curves.png draws the whole run (older reports have the last one only)
        report = {"pretrain_epochs": epochs, "pretrain_recipe": config.pretrain_recipe,
                  "pretrain_loss": losses[-1] if losses else None, "pretrain_losses": losses}
        if hasattr(prior, "init_from_gmm"):
            candidates = config.umap_neighbors or (None,)
            if len(candidates) == 1:
                report.update(run_start(self, data, candidates[0], on_epoch_end=self._start_epoch("warmup")))
            else:  # the warm-up's rows of the start kept, once it is chosen
                report.update(best_start(self, data, candidates))
                replay = self._start_epoch("warmup")
                for epoch, loss in enumerate(report.get("warmup_losses", ()) if replay else (), 1):
                    replay(epoch, loss)
        report["pretrain_seconds"] = time.perf_counter() - t0
        self.pretrain_report = report
        return report

    def _start_epoch(self, phase):
        """``on_epoch_end(epoch, loss)`` of a stage of the start: the callbacks' ``on_pretrain_epoch_end``."""
        if not (self.callbacks and self.world.is_main):
            return None
        return lambda epoch, loss: call(self.callbacks, "on_pretrain_epoch_end", self,
                                        {"phase": phase, "epoch": epoch, "loss": loss})

    def _begin(self, data):
        """The callbacks' ``on_train_begin``, once per trainer, before its first work."""
        if not self._began and self.world.is_main:
            call(self.callbacks, "on_train_begin", self, data)
        self._began = True

    # -- SVI ------------------------------------------------------------------------------------
    def train_epoch(self, x):
        """One pass over ``x`` in shuffled minibatches. Returns the mean loss per datapoint and, with
        free bits, ``(KL, correction per datapoint)`` of the constrained term (else ``None``)."""
        n, bs = x.shape[0], self.config.batch_size
        perm = self._permutation(n, self.epoch)
        world = self.world
        total, kl_sum, correction, counted = 0.0, 0.0, 0.0, 0

        def step(idx, start):
            nonlocal total, kl_sum, correction, counted
            xb = x[world.shard(idx)]  # one process: the whole minibatch
            self.cluster_inference.at_epoch(self.epoch + start / n)  # schedules (the relaxed temperature)
            if self.kl_warmup is not None:
                self.kl_warmup.beta = kl_warmup_beta(self.epoch + start / n, self.config.kl_warmup_epochs)
            loss = self._step(xb)
            total += loss
            if self.free_bits is not None and not self.jit:
                kl_sum += float(self.free_bits.kl)
                correction += float(self.free_bits.correction)
                if not world.is_main:  # every rank's loss holds the global batch's correction: count it once
                    total -= float(self.free_bits.correction)
                counted += 1
            return loss, xb.shape[0]

        steps = minibatch_epochs(step, n, epochs=1, batch_size=bs, order=lambda epoch: perm, first_epoch=self.epoch,
                                 bar=self._bar, fix="the last good checkpoint is kept; lower --lr, check the data "
                                                     "for extreme values, or pretrain longer")
        if world.distributed:  # the loss of the whole epoch, over all ranks
            total = float(world.sum(torch.tensor([total], dtype=torch.float64)))
        self._check_finite_params(steps - 1)
        self.epoch_lr = self._lr()
        self.scheduler.step()  # the learning-rate schedule, per epoch
        self.epoch += 1
        if self.free_bits is None:
            return total / n, None
        if self.jit:  # the handler's Python ran only while tracing: measure outside the JIT
            return total / n, self._measure_free_bits(x, perm)
        return total / n, (kl_sum / counted, correction / n)

    def _step(self, xb):
        """One step of Adam on this process's shard ``xb`` of a minibatch; returns the shard's loss."""
        if self.jit:
            if not self._traced:
                self._trace(xb)
            try:
                loss = self._step_fn(xb)
            except RuntimeError as error:  # Ctrl-C inside TorchScript's interpreter comes out as a RuntimeError
                if "KeyboardInterrupt" in str(error):
                    raise KeyboardInterrupt from None
                raise
        else:
            loss = self._step_fn(xb)
        loss.backward()  # under DDP: the gradients are averaged over ranks here
        self.optim.step()
        self.optim.zero_grad(set_to_none=True)
        return loss.item() / self.world.size

    def _trace(self, xb):
        """Compile the loss without touching the random state. Tracing runs the model and guide (drawing noise)
        twice before the compiled loss first runs, which would shift every later draw: a traced run would then
        differ from the eager one, and a resumed run (which traces again) from a straight one. The compiled loss
        replays at any batch size (the last, smaller minibatch too)."""
        state = rng_state()
        with warnings.catch_warnings():  # torch deprecates torch.jit.trace, which Pyro's JIT uses: not the user's
            warnings.filterwarnings("ignore", message=".*torch.jit.trace.* is deprecated", category=FutureWarning)
            self.objective(xb)
        set_rng_state(state)
        self._traced = True

    @torch.no_grad()
    def _measure_free_bits(self, x, perm, max_batches=10):
        """``(KL, correction per datapoint)`` of the constrained term, measured after the epoch outside
        the JIT on up to ``max_batches`` minibatches, without touching the random state of training."""
        elbo, bs, kls, corrections, count = self.cluster_inference.make_elbo(), self.config.batch_size, [], 0.0, 0
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            for start in range(0, min(x.shape[0], max_batches * bs), bs):
                xb = x[perm[start:start + bs]]
                elbo.loss(self._train_model, self.objective.guide, xb)
                kls.append(float(self.free_bits.kl))
                corrections += float(self.free_bits.correction)
                count += xb.shape[0]
        return sum(kls) / len(kls), corrections / count

    def _check_finite_params(self, step):
        # A finite loss can still leave NaN parameters behind (a NaN gradient in the last step):
        # stop before they reach a checkpoint. Once per epoch: one device sync, not one per step.
        params = [p for m in (self.model, self.guide) for p in m.parameters()]
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            bad = [f"{owner}.{name}" for owner, m in (("model", self.model), ("guide", self.guide))
                   for name, p in m.named_parameters() if not bool(torch.isfinite(p).all())]
            raise TrainingError(
                f"non-finite parameters ({', '.join(bad[:3])}) at epoch {self.epoch + 1}, step {step + 1}; "
                "the last good checkpoint is kept; lower --lr or pretrain longer")

    def check_data(self, data):
        """Raise :class:`~pyro_gmvae.errors.DataError` unless ``data`` fits the model, before any step."""
        if not isinstance(data, Dataset):
            raise DataError(f"fit takes a Dataset, got {type(data).__name__}; wrap tensors with "
                            "pyro_gmvae.from_tensor(x)")
        decoder = getattr(self.model, "decoder", None)
        check_binarizable(data.x, self.config.binarize)  # first: its message names the flag
        validate_data(data.x, likelihood=getattr(decoder, "likelihood", None))
        expected = getattr(decoder, "data_dim", None)
        if expected is not None and data.data_dim != expected:
            raise DataError(f"the data has {data.data_dim} features but the model expects {expected}; "
                            f"build the model with data_dim={data.data_dim}")
        if data.num_datapoints < self.model.num_clusters and getattr(self.model.prior, "components_are_clusters", True):
            raise DataError(f"{data.num_datapoints} datapoints cannot fill {self.model.num_clusters} clusters; "
                            "use fewer clusters or more data")
        check_shards(self.world, data.num_datapoints, self.config.batch_size)

    def _on_device(self, data):
        """``data`` with ``x`` on the training device and in the parameters' dtype (float64 data meets
        a float32 model otherwise), ``y`` on the same device."""
        dtype = next(iter(self.model.parameters())).dtype
        x = data.x.to(device=self.device, dtype=dtype)
        y = None if data.y is None else data.y.to(self.device)
        return data if x is data.x and y is data.y else dataclasses.replace(data, x=x, y=y)

    def _binary(self, data):
        """``data`` as the start and the scores see it: with ``config.binarize``, the static binary draw
        (:mod:`pyro_gmvae.data.binarize`), which a binary tensor is its own."""
        if self.config.binarize is None:
            return data
        return dataclasses.replace(data, x=binarize_static(data.x))

    def evaluate(self, data):
        """Metrics of the current model on ``data``: active clusters and, with labels, acc/NMI/ARI."""
        with self.local_params:
            return self._evaluate(data)

    def _evaluate(self, data):
        out = {}
        # no clusters, or components that are not clusters (the VampPrior's 500 pseudo-inputs: scoring them on every
        # epoch would cost half the epoch); evaluate computes them on demand
        if not self.model.cluster_sites or not getattr(self.model.prior, "components_are_clusters", True):
            return out
        marginals = cluster_marginals(self.model, self.guide, data.x)
        for site, resp in marginals.items():
            prefix = "" if site == self.model.cluster_sites[-1] else f"{site}_"
            out[f"{prefix}num_active_clusters"] = active_clusters(resp, COLLAPSE_THRESHOLD)
            out[f"{prefix}num_used_clusters"] = used_clusters(resp, COLLAPSE_THRESHOLD)
            out[f"{prefix}cluster_information"] = cluster_information(resp)
            if data.y is not None and not prefix:
                out.update(clustering_scores(data.y, resp.argmax(-1)))
                out["acc_most_confident"] = most_confident_accuracy(data.y, resp)
        return out

    def fit(self, data, *, on_epoch_end=None):
        """Pretrain (first call, if asked) and train until ``config.epochs``; returns the history.

        ``on_epoch_end(trainer, row)`` is called after each epoch (checkpointing lives there). Under
        torchrun every process calls ``fit``; the rows hold the clustering scores on rank 0 only."""
        with self.local_params:
            return self._fit(data, on_epoch_end)

    def _fit(self, data, on_epoch_end):
        self.check_data(data)
        self._begin(data)
        values = self._on_device(data).x  # gray levels, drawn afresh each epoch by --binarize dynamic
        data = self._binary(self._on_device(data))
        self._seed_once()
        self.pretrain_once(data)  # every rank: the same seeded computation, no communication
        if self.epoch == 0 and hasattr(self.model.prior, "init_from_data"):  # e.g. pseudo-inputs at data rows
            self.model.prior.init_from_data(data.x)
        if self.epoch == 0:  # q(c | x) of a guided cluster inference starts at the model's posterior
            self.cluster_inference.start(self.model, data.x, cluster_marginals)
        # SVI accumulates into .grad: a gradient left by pretraining (or by the caller) would leak into
        # the first step, and a run resumed from its first checkpoint would not have it.
        for module in (self.model, self.guide):
            for p in module.parameters():
                p.grad = None
        if self.world.distributed and self._step_fn is self.objective:
            self._step_fn = wrap(self.objective, self.world, self.device)
        if self.epoch == 0 and not self.world.is_main:  # each rank its own stream of Monte Carlo noise
            torch.manual_seed(self.world.rank_seed(self.config.seed))
        history = []
        steps = math.ceil(data.num_datapoints / self.config.batch_size)
        if self.epoch < self.config.epochs:
            loss = "traced (JIT)" if self.jit else "eager"
            self._say(f"training: epochs {self.epoch + 1} to {self.config.epochs}, {steps} steps each, loss {loss}")
        with progress_bar(self.config.epochs * steps, self.epoch * steps, "train",
                          self.progress and self.world.is_main) as bar:
            self._bar = bar
            try:
                self._epochs(data, history, on_epoch_end, values)
            finally:
                self._bar = None
        if self.world.is_main:
            call(self.callbacks, "on_train_end", self, history)
        return history

    def _epochs(self, data, history, on_epoch_end, values):
        """Train until ``config.epochs``, a row of ``history`` per epoch."""
        bar = self._bar
        while self.epoch < self.config.epochs:
            t0 = time.perf_counter()
            dynamic = self.config.binarize == "dynamic"  # a draw per epoch, seeded by (seed, epoch): resumable
            loss, constraint = self.train_epoch(binarize_epoch(values, self.config.seed, self.epoch) if dynamic
                                                else data.x)
            row = {"epoch": self.epoch, "elbo": -loss, "lr": self.epoch_lr}
            if self.kl_warmup is not None:  # below 1, "elbo" is the objective with the KL scaled by it
                row["kl_beta"] = self.kl_warmup.beta
            if constraint is not None:  # elbo without the constraint; objective is what was optimised
                kl, correction = constraint
                row.update(elbo=-loss + correction, objective=-loss, free_bits_kl=kl)
            if self.world.is_main:
                row.update(self.evaluate(data))
            row["seconds"] = time.perf_counter() - t0
            if self.world.is_main:
                self._warn_collapse(row)
            history.append(row)
            if on_epoch_end is not None:
                on_epoch_end(self, row)  # the checkpoint first: a callback that fails leaves the epoch saved
            if self.world.is_main:
                call(self.callbacks, "on_epoch_end", self, row)
            if bar is not None:
                bar.set_postfix({k: round(v, 3) for k, v in row.items() if k in ("epoch", "elbo", "acc", "nmi")})

    def _say(self, message):
        """A line per phase (pretraining, GMM fit, training) on stderr, with the progress bars."""
        if self.phases and self.world.is_main:
            print(f"pyro-gmvae: {message}", file=sys.stderr, flush=True)

    def _lr(self):
        return self.scheduler.get_last_lr()[0]

    def _warn_collapse(self, row):
        self._collapse.on_epoch_end(self, row)
