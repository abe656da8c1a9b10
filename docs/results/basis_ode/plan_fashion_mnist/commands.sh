# A Fashion-MNIST ConvODENet (width 8) trained by refinement K = n_steps 1 -> 2 -> 4 on 12,000
# training images for 4 epochs (a smaller configuration than the stored 55,000-image,
# 5-epoch, K = 8 run of fmnist_cpu_refined_full, which would have taken hours on the shared
# CPU), trained 2026-12-06 22:53 UTC on the shared 2-core CPU:
python -m basis_ode train --data fashion_mnist --limit 12000 --eval-limit 2000 --width 8 \
    --K 1 --n-steps 1 --refine-at 1,2 --epochs 4 --batch-size 64 --lr 0.1 --lr-drops 3 \
    --seed 0 --no-progress --out runs/plan/fmnist_refined_12k_s0
# Planned on its 2,000 validation images, Euler only (with midpoint too the plan would have
# taken about twice its 13 min on the loaded CPU), re-timed and evaluated on the 10,000 test
# images. Run 2026-12-07 02:03-02:17 UTC (14 min 28 s in all) while two noisy_dyn trainings and
# other tests used the CPU. Its fast (half the trained latency) and both (75 % of the latency,
# 60 % of the bytes) budgets had no certified configuration: no configuration with fewer than
# 4 steps in two blocks passes the certificate (the cheapest certified one needs 240 ms, the
# trained one 270 ms). Its benchmark files are benchmarks/results/plan_fmnist.{json,md}.
python -m benchmarks.plan_study --run runs/plan/fmnist_refined_12k_s0 --limit 2000 --schemes euler \
    --budget fast:latency_ms=0.5x --budget small:model_bytes=0.4x \
    --budget both:latency_ms=0.75x,model_bytes=0.6x \
    --notes "shared 2-core CPU: two noisy_dyn training processes (one per core) and other test runs ran throughout" \
    --out docs/results/basis_ode/plan_fashion_mnist --bench benchmarks/results/plan_fmnist
# The stored frontier (the plan.json written above, copied to runs/plan/study/fmnist_first/)
# chosen from again for budgets that certified points meet: fast = 90 % of the trained
# latency, both = 95 % of it and half its bytes (small unchanged), set from the validation
# frontier; re-timed and tested again at 02:19-02:21 UTC (2 min 4 s). This plan.json and plan.md
# are this command's; meta.bench in plan.json is the measurement's.
cp docs/results/basis_ode/plan_fashion_mnist/plan.json runs/plan/study/fmnist_first/plan.json
python -m benchmarks.plan_study --run runs/plan/fmnist_refined_12k_s0 --limit 2000 \
    --frontier runs/plan/study/fmnist_first/plan.json \
    --budget fast:latency_ms=0.9x --budget small:model_bytes=0.4x \
    --budget both:latency_ms=0.95x,model_bytes=0.5x \
    --notes "shared 2-core CPU: two noisy_dyn training processes (one per core) and other test runs ran throughout" \
    --out docs/results/basis_ode/plan_fashion_mnist
