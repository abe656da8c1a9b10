# bash benchmarks/basis_digits_compress.sh (EPOCHS=8, seed 0), then K = 1 on both models:
python -m benchmarks.basis_compress_study --run runs/compress_rule/direct_s0 --Ks 1 --n-steps-list 1,2,4,8 --out direct_s0_K1
python -m benchmarks.basis_compress_study --run runs/compress_rule/refined_s0 --Ks 1 --n-steps-list 1,2,4,8 --out refined_s0_K1
