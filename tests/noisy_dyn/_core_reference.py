"""Float64 NumPy re-implementations used by the core tests (independent of the library code).

Everything is written per example with column vectors, literally as docs/noisy_rnn.md states it.
"""

import numpy as np


def np_params(params):
    return {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}


def np_lipschitz(M, beta, gamma):
    return beta * (M - M.T) + (1.0 - beta) * (M + M.T) - gamma * np.eye(M.shape[0])


def np_lipschitz_rnn(params, xs, cfg, xi=None, u=None):
    """States h_0..h_T (B, T+1, H) and logits (B, C) of the Lipschitz / Noisy RNN."""
    P = np_params(params)
    xs = np.asarray(xs, dtype=np.float64)
    A = np_lipschitz(P["M_A"], cfg.beta, cfg.gamma_a)
    W = np_lipschitz(P["M_W"], cfg.beta, cfg.gamma_w)
    d = P["step"] if cfg.learn_step else np.full(cfg.hidden_size, cfg.dt)
    B, T, _ = xs.shape
    states = np.zeros((B, T + 1, cfg.hidden_size))
    logits = np.zeros((B, cfg.num_classes))
    for n in range(B):
        h = np.zeros(cfg.hidden_size)
        for k in range(T):
            f = cfg.alpha * (A @ h) + np.tanh(W @ h + P["U"] @ xs[n, k] + P["b"])
            if cfg.noise_form.name == "ito":
                h_new = h + d * f
                if xi is not None:
                    h_new = h_new + np.sqrt(d) * (cfg.sigma_add + cfg.sigma_mult * h) * xi[n, k]
            else:
                m = 1.0 if u is None else 1.0 - cfg.sigma_mult + cfg.sigma_mult * u[n, k]
                h_new = h + d * m * f
                if xi is not None:
                    h_new = h_new + cfg.sigma_add * xi[n, k]
            h = h_new
            states[n, k + 1] = h
        logits[n] = P["V"] @ h + P["c"]
    return states, logits


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_lstm(params, xs):
    """Final hidden states (B, H) of a PyTorch-convention LSTM (gates i, f, g, o)."""
    P = np_params(params)
    H = P["W_hh"].shape[1]
    out = []
    for seq in np.asarray(xs, dtype=np.float64):
        h, c = np.zeros(H), np.zeros(H)
        for x in seq:
            z = P["W_ih"] @ x + P["W_hh"] @ h + P["b"]
            i, f, g, o = z[:H], z[H : 2 * H], z[2 * H : 3 * H], z[3 * H :]
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def np_gru(params, xs):
    """Final hidden states (B, H) of a PyTorch-convention GRU (gates r, z, n)."""
    P = np_params(params)
    H = P["W_hh"].shape[1]
    Wi, Wh, bi, bh = P["W_ih"], P["W_hh"], P["b_ih"], P["b_hh"]
    out = []
    for seq in np.asarray(xs, dtype=np.float64):
        h = np.zeros(H)
        for x in seq:
            r = _sigmoid(Wi[:H] @ x + bi[:H] + Wh[:H] @ h + bh[:H])
            z = _sigmoid(Wi[H : 2 * H] @ x + bi[H : 2 * H] + Wh[H : 2 * H] @ h + bh[H : 2 * H])
            n = np.tanh(Wi[2 * H :] @ x + bi[2 * H :] + r * (Wh[2 * H :] @ h + bh[2 * H :]))
            h = (1.0 - z) * n + z * h
        out.append(h)
    return np.stack(out)
