"""The training objective and its schedule: Pyro's ELBO as a module, and VaDE's step decay of the rate."""

from pyro.infer.elbo import ELBOModule


def step_decay(config):
    """VaDE's schedule as a multiplier of the base rate: ``decay ** (epoch // every)``, floored."""
    floor = min(1.0, config.min_lr / config.lr)

    def factor(epoch):
        return max(config.lr_decay ** (epoch // config.lr_decay_every), floor)

    return factor


class Objective(ELBOModule):
    """Pyro's :class:`~pyro.infer.elbo.ELBOModule` of ``model`` and ``guide`` (their parameters are its
    parameters), whose loss is that of ``train_model``: the model under the free-bits handler, if any.

    ``scale`` multiplies the loss: the number of data-parallel processes, whose gradients DDP averages
    while the ELBO is a sum over the data (see :mod:`pyro_gmvae.inference.distributed`)."""

    def __init__(self, model, guide, elbo, train_model=None, scale=1):
        super().__init__(model, guide, elbo)
        self.train_model = model if train_model is None else train_model
        self.scale = scale

    def forward(self, x):
        loss = self.elbo.differentiable_loss(self.train_model, self.guide, x)
        return loss if self.scale == 1 else loss * self.scale
