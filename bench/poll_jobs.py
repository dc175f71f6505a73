#!/usr/bin/env python3
"""The libvirt-python anchor of bench/freshness.mts: the same jobs polled with blockJobInfo at the
engine's interval, one connection, for --seconds; prints its own CPU seconds and peak RSS as JSON.

  /usr/bin/python3 bench/poll_jobs.py --domains dom1,dom2 --interval 0.2 --seconds 30
"""
import argparse
import json
import resource
import time

import libvirt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--uri', default='qemu:///system')
    ap.add_argument('--domains', required=True)
    ap.add_argument('--disk', default='vda')
    ap.add_argument('--interval', type=float, default=0.2)
    ap.add_argument('--seconds', type=float, default=30)
    args = ap.parse_args()
    conn = libvirt.open(args.uri)
    doms = [conn.lookupByName(n) for n in args.domains.split(',')]
    cpu0 = time.process_time()
    start = time.monotonic()
    polls = 0
    while time.monotonic() - start < args.seconds:
        t = time.monotonic()
        for d in doms:
            d.blockJobInfo(args.disk, libvirt.VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES)
        polls += 1
        time.sleep(max(0.0, args.interval - (time.monotonic() - t)))
    wall = time.monotonic() - start
    cpu = time.process_time() - cpu0
    conn.close()
    print(json.dumps({
        'cpuPerWallSecond': cpu / wall,
        'polls': polls,
        'maxRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == '__main__':
    main()
