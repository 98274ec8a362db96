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
  const base = new Redis(redisUrl);
  const monitor = await base.monitor();
  // Lines still streaming in while the monitor disconnects (other clients' traffic) look to ioredis like
  // replies without a command: it emits "Command queue state error", which must not crash the benchmark.
  monitor.on("error", () => undefined);
  const lines = [];
  monitor.on("monitor", (time, args, source) => lines.push([source, args]));
  const result = await work();
  await new Promise((resolve) => setTimeout(resolve, 300));
  monitor.disconnect();
  base.disconnect();

  const ours = new Set();
  for (const [source, args] of lines) if (args.some((a) => typeof a === "string" && a.includes(namespace))) ours.add(source);
  // Script-internal commands of other clients' scripts share the "lua" source: keep only ours.
  ours.delete("lua");
  const luaOurs = ([source, args]) => source === "lua" && args.some((a) => typeof a === "string" && a.includes(namespace));
  const ports = portInodes();
  const owner = new Map();
  for (const [name, pid] of Object.entries(pidsByName)) for (const inode of socketInodes(pid)) owner.set(inode, name);
  const counts = {};
  for (const line of lines) {
    const [source, args] = line;
    if (!ours.has(source) && !luaOurs(line)) continue;
    // Commands run by a Lua script (BullMQ's) are reported with the source "lua".
    const who = source === "lua" ? "(inside Lua scripts)" : (owner.get(ports.get(Number(source.split(":").pop()))) ?? "other");
    const command = String(args[0]).toUpperCase();
    counts[who] ??= {};
    counts[who][command] = (counts[who][command] ?? 0) + 1;
  }
  return { result, counts };
}
