# The digits demo trained for 100 epochs, meant to reach a plateau (the plateau rule in each
# study_setup.json: met by reference/, late gain 0.09 points; not by ito/, 0.87 points against
# 0.5): both noise forms (reference form at sigma_add, sigma_mult = 0.03, 0.02 and 0.06, 0.04 with
# a fixed step; Ito form at 0.05 and 0.1), each against its deterministic twin at the same dt =
# 0.3675, for 100 epochs instead of the demo's 30 at the time (lr 0.01, x0.1 after epoch 90), on
# 16 fresh seeds (112-127); two ensembles of 48 members.
python -m noisy_dyn demo --epochs 100 --seeds 16 --first-seed 112 \
    --out docs/results/noisy_dyn/demo_tradeoff_plateau
