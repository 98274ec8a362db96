/**
 * Counts the Redis commands our services send, by process and command, with Redis' MONITOR (a diagnostic only:
 * MONITOR slows Redis, so nothing is timed while it runs). A connection is ours when it touched a key or
 * channel of the run's namespace; it is attributed to a process by the owner of its local TCP port
 * (/proc/<pid>/fd socket inodes ↔ /proc/net/tcp), so MULTI/EXEC/WATCH and other key-less commands count too.
 */
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { Redis } from "ioredis";

function socketInodes(pid) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // fd closed meanwhile
    }
  }
  return inodes;
}

/** local port → inode, for IPv4 and IPv6 sockets. */
function portInodes() {
  const out = new Map();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const port = parseInt(cols[1].split(":")[1], 16);
      out.set(port, cols[9]);
    }
  }
  return out;
}

export async function monitorRedis(redisUrl, namespace, pidsByName, work) {
  const monitor = await new Redis(redisUrl).monitor();
  const lines = [];
  monitor.on("monitor", (time, args, source) => lines.push([source, args]));
  const result = await work();
  await new Promise((resolve) => setTimeout(resolve, 300));
  monitor.disconnect();

  const ours = new Set();
  for (const [source, args] of lines) if (args.some((a) => typeof a === "string" && a.includes(namespace))) ours.add(source);
  const ports = portInodes();
  const owner = new Map();
  for (const [name, pid] of Object.entries(pidsByName)) for (const inode of socketInodes(pid)) owner.set(inode, name);
  const counts = {};
  for (const [source, args] of lines) {
    if (!ours.has(source)) continue;
    const port = Number(source.split(":").pop());
    const who = owner.get(ports.get(port)) ?? "other";
    const command = String(args[0]).toUpperCase();
    counts[who] ??= {};
    counts[who][command] = (counts[who][command] ?? 0) + 1;
  }
  return { result, counts };
}
