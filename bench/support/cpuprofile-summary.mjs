/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`): self time by function and by package, and
 * inclusive time of chosen frames.
 *
 *   node bench/support/cpuprofile-summary.mjs <file.cpuprofile> [--top 40] [--since-ms 3000] [--inclusive name,name]
 *
 * `--since-ms` skips the first N ms of the profile (boot: module loading and compilation).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    tree: { type: "string", default: "0" },
    "min-pct": { type: "string", default: "1" },
    top: { type: "string", default: "40" },
    "since-ms": { type: "string", default: "0" },
    inclusive: { type: "string", default: "" },
  },
});
const TOP = Number(args.top);

export function summarise(profile, { sinceMs = 0 } = {}) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  let t = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (t - profile.startTime < sinceMs * 1000) continue;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const label = (n) => {
    const f = n.callFrame;
    const url = f.url
      .replace(/^file:\/\//, "")
      .replace(/.*node_modules\//, "nm:")
      .replace(/.*\/work\/main\//, "");
    return `${f.functionName || "(anonymous)"} ${url}:${f.lineNumber + 1}`;
  };
  const pkg = (n) => {
    const url = n.callFrame.url;
    if (!url) return n.callFrame.functionName.startsWith("(") ? n.callFrame.functionName : "(native)";
    if (url.startsWith("node:")) return "node:internal";
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (m) return m[1];
    const w = /\/work\/main\/((?:services|libs|tools)\/[^/]+)/.exec(url);
    return w ? w[1] : url;
  };
  const byFunction = new Map();
  const byPackage = new Map();
  for (const [id, us] of selfUs) {
    const n = nodes.get(id);
    byFunction.set(label(n), (byFunction.get(label(n)) ?? 0) + us);
    byPackage.set(pkg(n), (byPackage.get(pkg(n)) ?? 0) + us);
  }
  const inclusive = (names) => {
    const out = {};
    for (const name of names) {
      let us = 0;
      for (const [id, s] of selfUs) {
        let cur = id;
        while (cur !== undefined) {
          if (nodes.get(cur).callFrame.functionName === name) {
            us += s;
            break;
          }
          cur = parent.get(cur);
        }
      }
      out[name] = us;
    }
    return out;
  };
  // Inclusive time per node (self + descendants), for a top-down tree.
  const inclusiveUs = new Map();
  const visit = (id) => {
    const n = nodes.get(id);
    let us = selfUs.get(id) ?? 0;
    for (const c of n.children ?? []) us += visit(c);
    inclusiveUs.set(id, us);
    return us;
  };
  const root = profile.nodes[0].id;
  visit(root);
  const tree = (maxDepth, minUs) => {
    const lines = [];
    const walk = (id, depth) => {
      const n = nodes.get(id);
      const kids = (n.children ?? []).filter((c) => inclusiveUs.get(c) >= minUs).sort((a, b) => inclusiveUs.get(b) - inclusiveUs.get(a));
      for (const c of kids) {
        lines.push([depth, inclusiveUs.get(c), selfUs.get(c) ?? 0, label(nodes.get(c))]);
        if (depth + 1 < maxDepth) walk(c, depth + 1);
      }
    };
    walk(root, 0);
    return lines;
  };
  // Owner = the nearest frame (leaf → root) that belongs to a package or our code: Node internals and native
  // frames (socket writes, crypto, streams) are charged to whoever called them.
  const byOwner = new Map();
  for (const [id, us] of selfUs) {
    let cur = id;
    let owner;
    while (cur !== undefined) {
      const n = nodes.get(cur);
      const url = n.callFrame.url;
      if (url && !url.startsWith("node:")) {
        owner = pkg(n);
        break;
      }
      cur = parent.get(cur);
    }
    const leaf = nodes.get(id).callFrame.functionName;
    owner ??= leaf.startsWith("(") ? leaf : "(node internals, no package caller)";
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + us);
  }
  const idleUs = [...selfUs].filter(([id]) => nodes.get(id).callFrame.functionName === "(idle)").reduce((a, [, us]) => a + us, 0);
  return { totalUs: total, busyUs: total - idleUs, byFunction, byPackage, byOwner, inclusive, tree };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const file of positionals) {
    const s = summarise(JSON.parse(readFileSync(file, "utf8")), { sinceMs: Number(args["since-ms"]) });
    const pct = (us) => `${((100 * us) / s.busyUs).toFixed(1).padStart(5)}%`;
    console.log(
      `\n${file}: ${(s.totalUs / 1e6).toFixed(2)} s sampled, ${(s.busyUs / 1e6).toFixed(2)} s busy (percentages are of busy time)`,
    );
    console.log("\nby package (self time)");
    for (const [k, v] of [...s.byPackage].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${pct(v)}  ${k}`);
    console.log("\nby owner (self time of Node internals charged to the package that called them)");
    for (const [k, v] of [...s.byOwner].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${pct(v)}  ${k}`);
    console.log("\nby function (self time)");
    for (const [k, v] of [...s.byFunction].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${pct(v)}  ${k}`);
    if (Number(args.tree) > 0) {
      console.log("\ncall tree (inclusive, self)");
      for (const [depth, inc, self, name] of s.tree(Number(args.tree), (s.busyUs * Number(args["min-pct"])) / 100))
        console.log(`${pct(inc)} ${pct(self)}  ${"  ".repeat(depth)}${name}`);
    }
    if (args.inclusive) {
      console.log("\ninclusive");
      for (const [k, v] of Object.entries(s.inclusive(args.inclusive.split(",")))) console.log(`${pct(v)}  ${k}`);
    }
  }
}
