set -e
for s in 0 1 2; do
  for m in nrnn_ito lipschitz; do
    python -m noisy_dyn train --preset $m --data fashion_mnist --limit 2000 --epochs 3 --hidden 64 --batch-size 64 --lr 3e-3 --dt 0.03 --seed $s --out runs/fm3/${m}_s$s --quiet
  done
  python -m noisy_dyn robustness --checkpoints runs/fm3/nrnn_ito_s$s runs/fm3/lipschitz_s$s --names nrnn_ito,lipschitz --data fashion_mnist --limit 2000 --kinds gaussian,salt_pepper --out runs/fm3/rob_s$s --quiet
done
for s in 0 1 2; do cp runs/fm3/rob_s$s/robustness.json runs/fm3/robustness_s$s.json; done
python docs/results/noisy_dyn/fmnist_cpu_3seeds_current_sampler/summarize.py runs/fm3

