export LD_LIBRARY_PATH=$PWD/ship/lib PATH=$PWD/ship/bin:$PATH GPT50B_TOP=$PWD
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1
mkdir -p /tmp/gc /tmp/bg; cd /tmp
$GPT50B_TOP/ship/build/tests/codelets/cuda/test_cuda_vs_cpu > /tmp/gc/test_cuda_vs_cpu.log 2>&1; echo "test_cuda_vs_cpu rc=$?: $(tail -n 1 /tmp/gc/test_cuda_vs_cpu.log)"
grep -E "set: as added|FAIL" /tmp/gc/test_cuda_vs_cpu.log | head -8
$GPT50B_TOP/ship/build/tests/graph/test_fixture cuda > /tmp/gc/fixture_cuda.log 2>&1; echo "fixture cuda rc=$?: $(tail -n 1 /tmp/gc/fixture_cuda.log)"
tar czf $OUT/gc.tgz -C /tmp gc; cd $GPT50B_TOP
CONFIGS="1.3b-bf16" EAGER=0 bash scripts/bench_gpu.sh /tmp/bg > /tmp/bg/bench.out 2>&1; echo bench rc=$?; tail -8 /tmp/bg/bench.out
tar czf $OUT/bg.tgz -C /tmp bg
