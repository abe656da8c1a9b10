"""Module faces over the pure functions: a Flax NNX module and an Equinox module.

Both hold the parameter dict of :func:`noisy_dyn.init_params` and call :func:`noisy_dyn.apply`;
they add nothing numerical. ``module.params`` (NNX: ``module.param_dict()``) is the plain dict, so
anything written for the pure functions (theory, attacks, training) works on a module's weights.

Example::

    import jax, noisy_dyn
    from flax import nnx
    cfg = noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=10, hidden_size=32)
    model = noisy_dyn.nn.NoisyRNN(cfg, rngs=nnx.Rngs(0))
    logits = model(jax.numpy.ones((4, 20, 1)), key=jax.random.key(1))   # noise on
    eqx_model = noisy_dyn.nn.EqxNoisyRNN(cfg, key=jax.random.key(0))
    logits = eqx_model(jax.numpy.ones((20, 1)))                         # one example
"""

import equinox as eqx
import jax
from flax import nnx
from jaxtyping import Array, ArrayLike, Float, Int

from ._config import NoisyRNNConfig
from ._noise import NoiseSample
from ._params import init_params
from ._solve import apply
from ._types import Key, Params

__all__ = ["EqxNoisyRNN", "NoisyRNN"]


class NoisyRNN(nnx.Module):
    """Flax NNX face of the Noisy RNN (and of the LSTM/GRU baselines): ``cfg`` plus one
    ``nnx.Param`` per entry of the parameter dict.

    Arguments:
        cfg: the configuration.
        rngs: ``nnx.Rngs``; the ``params`` stream seeds :func:`noisy_dyn.init_params`.
        params: optional existing parameter dict to wrap instead of initialising.
    """

    def __init__(
        self, cfg: NoisyRNNConfig, *, rngs: nnx.Rngs | None = None, params: Params | None = None
    ):
        if params is None:
            if rngs is None:
                raise ValueError("NoisyRNN needs rngs=nnx.Rngs(seed) or params=... to start from.")
            params = init_params(rngs.params(), cfg)
        self.cfg = cfg
        self._names = tuple(params)
        for name, value in params.items():
            setattr(self, name, nnx.Param(value))

    def param_dict(self) -> Params:
        """The parameters as the plain dict the pure functions take."""
        return {name: getattr(self, name)[...] for name in self._names}

    def __call__(
        self,
        xs: Float[ArrayLike, "batch time input"],
        *,
        key: Key | None = None,
        noise: NoiseSample | tuple | Float[ArrayLike, "batch time hidden"] | None = None,
        lengths: Int[ArrayLike, " batch"] | None = None,
    ) -> Float[Array, "batch classes"]:
        """Logits ``V h_L + c`` of each row's last state; ``key``/``noise``/``lengths`` as in
        :func:`noisy_dyn.apply`."""
        return apply(self.param_dict(), xs, self.cfg, key=key, noise=noise, lengths=lengths)


class EqxNoisyRNN(eqx.Module):
    """Equinox face of the Noisy RNN (and of the LSTM/GRU baselines).

    Called on one example ``(time, input_size)`` (the Equinox convention; ``jax.vmap`` it with
    split keys) or on a batch ``(batch, time, input_size)``.

    Arguments:
        cfg: the configuration (a pytree field: its numbers are leaves, not trainable arrays
            unless made so).
        key: PRNG key for :func:`noisy_dyn.init_params`.
        params: optional existing parameter dict to wrap instead of initialising.
    """

    params: Params
    cfg: NoisyRNNConfig

    def __init__(
        self, cfg: NoisyRNNConfig, *, key: Key | None = None, params: Params | None = None
    ):
        if params is None:
            if key is None:
                raise ValueError("EqxNoisyRNN needs key=jax.random.key(seed) or params=....")
            params = init_params(key, cfg)
        self.params = dict(params)
        self.cfg = cfg

    def __call__(
        self,
        xs: Float[ArrayLike, "*batch time input"],
        *,
        key: Key | None = None,
        noise: NoiseSample | tuple | Float[ArrayLike, "*batch time hidden"] | None = None,
        lengths: Int[ArrayLike, "*batch"] | None = None,
    ) -> Float[Array, "*batch classes"]:
        """Logits for one example ``(time, input)`` or a batch; ``key``/``noise``/``lengths`` as
        in :func:`noisy_dyn.apply` (for one example, noise arrays are ``(time, hidden)`` and
        ``lengths`` is one integer)."""
        ndim = len(getattr(xs, "shape", ()))
        if ndim != 2:
            return apply(self.params, xs, self.cfg, key=key, noise=noise, lengths=lengths)
        if lengths is not None:
            lengths = jax.numpy.reshape(jax.numpy.asarray(lengths), (1,))
        if noise is not None:
            if isinstance(noise, tuple):
                noise = tuple(None if a is None else a[None] for a in noise)
            else:
                noise = noise[None]
        xs = jax.numpy.asarray(xs)[None]
        return apply(self.params, xs, self.cfg, key=key, noise=noise, lengths=lengths)[0]
