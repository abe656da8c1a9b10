# The discovery study of ../commands.sh rerun with the code of commit b91a178 (2026-12-07,
# 14:19-15:57 UTC on the 2-core CPU beside a pixel-MNIST training run, under `nice -n 19`, so its
# 5,749 s are no speed measurement), scored on the test split as the stored study was, to store
# each member's accuracies (study_accuracies.csv), which the stored study predates.
python -m noisy_dyn study --preset nrnn_reference --fixed-step --dt 0.3675 --data digits \
    --sigma-add 0,0.03 --sigma-mult 0,0.02 --seeds 16 --hidden 64 --epochs 30 --batch-size 64 \
    --lr 0.01 --kinds gaussian,multiplicative,salt_pepper,fgsm --split test \
    --out docs/results/noisy_dyn/study_digits/rerun_b91a178
