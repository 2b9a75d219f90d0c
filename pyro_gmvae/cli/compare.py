"""``pyro-gmvae compare RUN_A RUN_B``: the paired difference of two runs' log p(x) on the same datapoints."""

import json
import sys

from ..evaluation.compare import compare_headline, compare_runs


def add_compare_parser(sub, common):
    c = sub.add_parser("compare", parents=[common],
                       help="the paired difference of two runs' log p(x) on the same datapoints, with its errors")
    c.add_argument("run_a")
    c.add_argument("run_b")
    c.add_argument("--estimator", default="is-guide", help="is-guide (default), is or ais")
    c.add_argument("--num-samples", type=int, help="importance samples per datapoint (is, is-guide)")
    c.add_argument("--split", default="test", help="the split of the runs' data set (default %(default)s)")
    c.add_argument("--num-datapoints", type=int, help="the first N datapoints of the split (default: all)")
    c.add_argument("--batch-size", type=int, default=100, help="datapoints per batch (default %(default)s)")
    c.add_argument("--device", default="cpu", help="default %(default)s")
    return c


def cmd_compare(args):
    def say(line):
        print(f"pyro-gmvae compare: {line}", file=sys.stderr, flush=True)
    # a terminal gets bars; a log (stderr redirected) a line per tenth of a long AIS, as evaluate
    result = compare_runs(args.run_a, args.run_b, estimator=args.estimator, num_samples=args.num_samples,
                          split=args.split, num_datapoints=args.num_datapoints, device=args.device,
                          batch_size=args.batch_size, progress=True if sys.stderr.isatty() else say, log=say)
    print(json.dumps(result))
    print(f"pyro-gmvae compare: {compare_headline(result)}", file=sys.stderr)
    return 0
