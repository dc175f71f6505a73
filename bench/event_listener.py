#!/usr/bin/env python3
"""Block-job events as libvirt-python sees them, for bench/event-latency.mts.

Registers libvirt's default event loop (run in a thread, as libvirt-python's own examples do),
listens for VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2 on every domain, and prints one JSON line per event of
the domains named in --domains: {"dom": NAME, "status": N, "t": CLOCK_MONOTONIC in ns}, taken first
thing in the callback. Prints {"ready": true} once registered; exits when stdin closes.

  /usr/bin/python3 bench/event_listener.py --domains dom1,dom2 [--uri qemu:///system]
"""
import argparse
import json
import sys
import threading
import time

import libvirt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--uri', default='qemu:///system')
    ap.add_argument('--domains', required=True, help='comma-separated domain names')
    args = ap.parse_args()
    wanted = set(args.domains.split(','))

    libvirt.virEventRegisterDefaultImpl()

    def run_loop():
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=run_loop, daemon=True).start()
    conn = libvirt.open(args.uri)
    out = sys.stdout

    def on_block_job(_conn, dom, disk, job_type, status, _opaque):
        t = time.monotonic_ns()
        name = dom.name()
        if name in wanted:
            out.write(json.dumps({'dom': name, 'status': status, 't': t}) + '\n')
            out.flush()

    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, on_block_job, None)
    out.write(json.dumps({'ready': True}) + '\n')
    out.flush()
    sys.stdin.read()
    conn.close()


if __name__ == '__main__':
    main()
