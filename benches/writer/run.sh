#!/usr/bin/env bash
# Write throughput of the writer (records/s through Writer::write_batch with the run protocol)
# into the embedded store and into DynamoDB on moto. Results go to BENCHMARKS.md ("Writer").
#
#   benches/writer/run.sh [RECORDS] [MOTO_RECORDS]     (defaults 10000 and 2000)
#
# moto comes from the test venv (infra/test installs it) or HUB_MOTO_SERVER. On moto the records
# are written with single conditional puts (transaction size 1): moto deep-copies the whole table
# for every TransactWriteItems, so transactions slow down as the table grows and 4 writers run
# into the retry deadline from about 1000 records. One writer on moto: moto loses ADDs of
# concurrent transactions on one item (measured 478 of 480), which would leave the run's batch
# count short and the run never complete; DynamoDB's ADD is atomic. The bench profile drops fat
# LTO so the build takes minutes, not ten; the code is optimised the same.
set -euo pipefail
cd "$(dirname "$0")/../.."
records="${1:-10000}"
moto_records="${2:-2000}"
export CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16
cargo bench -p hub-writer --bench write_throughput -- embedded "$records" 100 4 25
cargo bench -p hub-writer --bench write_throughput -- embedded "$records" 100 4 1
cargo bench -p hub-writer --bench write_throughput -- moto "$moto_records" 100 1 1
