# The digits demo with its defaults (12 seeds, 100 epochs, lr 0.01 x0.1 after epoch 90, H = 64,
# fixed dt = 0.3675): reference form at (sigma_add, sigma_mult) = (0.03, 0.02) and (0.06, 0.04),
# Ito form at 0.05 and 0.1, each against its deterministic twin; two ensembles of 36 members.
python -m noisy_dyn demo --out docs/results/noisy_dyn/demo_tradeoff
