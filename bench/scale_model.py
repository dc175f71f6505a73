#!/usr/bin/env python3
"""The libvirt-python anchor of bench/scale.mts: every domain's XML read and its disks' backing
chains parsed, the work Strata does for a full model. Prints one JSON object.

  /usr/bin/python3 bench/scale_model.py --uri test:///path/to/host.xml
"""
import argparse
import json
import resource
import time
import xml.etree.ElementTree as ET

import libvirt


def chains(xml):
    disks = {}
    for disk in ET.fromstring(xml).iterfind('./devices/disk'):
        target = disk.find('target').get('dev')
        layers = []
        node = disk
        source = disk.find('source')
        while source is not None:
            layers.append(source.get('file'))
            node = node.find('backingStore')
            source = None if node is None else node.find('source')
        disks[target] = layers
    return disks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--uri', required=True)
    args = ap.parse_args()
    start = time.perf_counter()
    conn = libvirt.open(args.uri)
    opened = time.perf_counter() - start
    model = {d.name(): chains(d.XMLDesc(0)) for d in conn.listAllDomains(0)}
    elapsed = time.perf_counter() - start
    conn.close()
    layers = sum(len(c) for disks in model.values() for c in disks.values())
    print(json.dumps({
        'seconds': elapsed,
        'openSeconds': opened,
        'domains': len(model),
        'layers': layers,
        'maxRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == '__main__':
    main()
