# The digits ConvODENet (width 8) trained by refinement K = n_steps 1 -> 2 -> 4 -> 8 (the recipe
# of benchmarks/basis_digits_compress.sh; the best validation epoch was at K = 4, so the stored
# model is K = n_steps = 4, Euler), trained 2026-12-06 22:12 UTC on the shared 2-core CPU:
python -m basis_ode train --data digits --width 8 --K 1 --n-steps 1 --refine-at 2,4,6 \
    --epochs 8 --batch-size 64 --lr 0.1 --lr-drops 6 --seed 0 --no-progress \
    --out runs/plan/digits_refined_s0
# Then planned for three budgets fixed as fractions of the trained configuration's measured
# costs: fast (half its latency), small (40 % of its bytes), both (75 % of its latency and 60 %
# of its bytes). The frontier is measured on the 180 validation images (the planner's default
# space: piecewise_constant, hat, legendre; K 1, 2, 4; 1, 2, 4 steps; Euler and midpoint;
# projection and interpolation; per-block walks from the best grid point and the trained one);
# the choices are re-timed and evaluated on the 359 test images afterwards. Run 2026-12-07
# 01:51-02:01 UTC (9 min 52 s in all) while two noisy_dyn trainings and other tests used the CPU.
# The exported ResNets of the Euler choices (bo.export_resnet) were left out of this folder:
# `bo.export_resnet(dir, *bo.load_model("fast/model.npz"))` writes them again.
python -m benchmarks.plan_study --run runs/plan/digits_refined_s0 \
    --budget fast:latency_ms=0.5x --budget small:model_bytes=0.4x \
    --budget both:latency_ms=0.75x,model_bytes=0.6x \
    --notes "shared 2-core CPU: two noisy_dyn training processes (one per core) and other test runs ran throughout" \
    --out docs/results/basis_ode/plan_digits --bench benchmarks/results/plan_digits
