#!/usr/bin/python3
"""One long-lived Ceph client for an agent (see src/storage/rados-session.ts).

Each `rbd`/`ceph` command is a new client: process start, monitor hunt, cephx, osdmap fetch. This helper pays
that once and then answers JSON-lines requests on stdin, one JSON line per answer on stdout:
  {"id": N, "op": "...", ...}  ->  {"id": N, "ok": true, "result": ...} | {"id": N, "ok": false, "errno": E, "error": "..."}
Requests run concurrently (librados releases the GIL), so answers may come out of order. Exits when stdin closes.
Ops: ping; exists, lockers, watchers {image}; lock_add {image, cookie}; lock_break {image, cookie, locker};
mon {cmd}; latest_osdmap. ("cookie" is the lock's id: "id" is the request's.)
Runs with Debian's /usr/bin/python3, the one that has python3-rados and python3-rbd.
"""
import argparse
import errno
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import rados
import rbd

out_lock = threading.Lock()
inflight = threading.Condition()
busy = 0


def answer(msg):
    line = json.dumps(msg, separators=(',', ':')) + '\n'
    with out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


class BadRequest(Exception):
    pass


def arg(req, key):
    v = req.get(key)
    if not isinstance(v, str) or v == '':
        raise BadRequest(f'"{key}" must be a non-empty string')
    return v


def image(ioctx, req):
    # Read-only opens register no watch: this client never shows up among an image's watchers (and so is
    # never blocklisted by a node fencing them), and the lock calls below are plain cls_lock calls anyway.
    return rbd.Image(ioctx, arg(req, 'image'), read_only=True)


def op_lockers(ioctx, req):
    with image(ioctx, req) as img:
        info = img.list_lockers()
    # list_lockers() gives [] when there are none, else {tag, exclusive, lockers: [(client, cookie, addr)]}.
    if not info:
        return []
    return [{'id': cookie, 'locker': client, 'address': addr} for client, cookie, addr in info['lockers']]


def op_lock_add(ioctx, req):
    with image(ioctx, req) as img:
        img.lock_exclusive(arg(req, 'cookie'))
    return True


def op_lock_break(ioctx, req):
    with image(ioctx, req) as img:
        img.break_lock(arg(req, 'locker'), arg(req, 'cookie'))
    return True


def op_watchers(ioctx, req):
    with image(ioctx, req) as img:
        return [{'address': w['addr']} for w in img.watchers_list()]


def op_exists(ioctx, req):
    try:
        with image(ioctx, req):
            return True
    except rbd.ImageNotFound:
        return False


FLOAT_ARGS = ('expire', 'weight')  # osd blocklist add; osd reweight, osd crush reweight


def op_mon(cluster, req):
    cmd = req.get('cmd')
    if not isinstance(cmd, dict) or not isinstance(cmd.get('prefix'), str):
        raise BadRequest('"cmd" must be an object with a "prefix"')
    # The monitor checks types strictly and wants a float here; JSON from Node writes 600.0 as 600.
    for k in FLOAT_ARGS:
        if type(cmd.get(k)) is int:  # not bool
            cmd[k] = float(cmd[k])
    # The timeout argument is ignored by this binding; rados_mon_op_timeout (set at connect) bounds the call.
    code, outbuf, outs = cluster.mon_command(json.dumps(cmd), b'')
    return {'code': code, 'outs': outs, 'outbuf': outbuf.decode('utf-8', 'replace')}


def serve(cluster, ioctx, req):
    global busy
    rid = req.get('id')
    try:
        op = req.get('op')
        if op == 'ping':
            result = 'pong'
        elif op == 'mon':
            result = op_mon(cluster, req)
        elif op == 'latest_osdmap':
            # After an OSD was marked down, ops this client already sent to it are resent only once the client
            # holds the newer map; asking for it now beats waiting for the objecter's laggy-op check.
            cluster.wait_for_latest_osdmap()
            result = True
        elif op in OPS:
            result = OPS[op](ioctx, req)
        else:
            raise BadRequest(f'unknown op {op!r}')
        answer({'id': rid, 'ok': True, 'result': result})
    except BadRequest as e:
        answer({'id': rid, 'ok': False, 'errno': errno.EINVAL, 'error': str(e)})
    except Exception as e:  # every failure is an answer, never the end of the helper
        code = getattr(e, 'errno', None)
        answer({'id': rid, 'ok': False, 'errno': code if isinstance(code, int) else 0, 'error': f'{type(e).__name__}: {e}'})
    finally:
        with inflight:
            busy -= 1
            inflight.notify_all()


OPS = {'exists': op_exists, 'lockers': op_lockers, 'lock_add': op_lock_add, 'lock_break': op_lock_break, 'watchers': op_watchers}


def main():
    global busy
    p = argparse.ArgumentParser()
    p.add_argument('--conf', required=True)
    p.add_argument('--id', required=True)
    p.add_argument('--keyring')
    p.add_argument('--pool', required=True)
    p.add_argument('--timeout', type=int, default=25, help='seconds: connect, and each monitor or OSD operation')
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='a client setting (repeatable)')
    a = p.parse_args()
    conf = {
        # A broken lock's locker is the old holder's session (like this one), which does no I/O on the image;
        # the node fences the image's watchers, the clients that do, itself.
        'rbd_blocklist_on_break_lock': 'false',
        # A stuck OSD or monitor fails the call instead of holding a thread forever.
        'rados_mon_op_timeout': str(a.timeout),
        'rados_osd_op_timeout': str(a.timeout),
        # The agent's CLI clients share this name: do not take over their admin socket.
        'admin_socket': '',
    }
    for kv in a.set:
        key, sep, value = kv.partition('=')
        if not sep or not key:
            p.error(f'--set wants KEY=VALUE, got {kv!r}')
        conf[key] = value
    if a.keyring:
        conf['keyring'] = a.keyring
    try:
        cluster = rados.Rados(conffile=a.conf, rados_id=a.id, conf=conf)
        cluster.connect(timeout=a.timeout)
        ioctx = cluster.open_ioctx(a.pool)
    except Exception as e:
        sys.stderr.write(f'ycluster-rados: cannot connect to pool {a.pool}: {type(e).__name__}: {e}\n')
        sys.exit(1)

    pool = ThreadPoolExecutor(max_workers=16)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError('not an object')
        except ValueError as e:
            answer({'id': None, 'ok': False, 'errno': errno.EINVAL, 'error': f'bad request line: {e}'})
            continue
        with inflight:
            busy += 1
        pool.submit(serve, cluster, ioctx, req)

    # stdin closed: the agent is done (or gone). Give running calls a moment, then leave without waiting on a
    # stuck librados call (they cannot be cancelled); shut the client down cleanly only when nothing runs.
    with inflight:
        inflight.wait_for(lambda: busy == 0, timeout=2)
        idle = busy == 0
    if idle:
        ioctx.close()
        cluster.shutdown()
    sys.stdout.flush()
    os._exit(0)


if __name__ == '__main__':
    main()
