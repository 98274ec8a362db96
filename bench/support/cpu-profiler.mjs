/**
 * Preload that CPU-profiles a process in segments (`--cpu-prof` is not allowed in NODE_OPTIONS, `--import` is):
 *
 *   NODE_OPTIONS="--import=<abs path>/bench/support/cpu-profiler.mjs" BENCH_CPU_PROFILE_DIR=<dir> node app.js
 *
 * Each SIGUSR2 writes the profile since the previous one to <dir>/<label>-<script>-<pid>.cpuprofile (label read
 * from <dir>/label, written by the benchmark before it signals) and starts a new segment; the last segment is
 * written at exit. Services that re-raise SIGTERM after a graceful shutdown never run `exit` handlers, which is
 * why segments are pulled by signal.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { basename, dirname, join } from "node:path";

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: Number(process.env.BENCH_CPU_PROFILE_INTERVAL_US ?? 500) });
  session.post("Profiler.start");
  const script = process.argv[1] ? `${basename(dirname(dirname(process.argv[1])))}-${basename(process.argv[1], ".js")}` : "eval";
  const label = () => {
    try {
      return readFileSync(join(dir, "label"), "utf8").trim() || "segment";
    } catch {
      return "segment";
    }
  };
  // The in-process inspector session answers synchronously, so this also completes inside an exit handler.
  const flush = (restart) =>
    session.post("Profiler.stop", (err, result) => {
      if (!err)
        writeFileSync(join(dir, `${label()}-${script.replace(/[^\w.-]/g, "_")}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
      if (restart) session.post("Profiler.start");
    });
  process.on("SIGUSR2", () => flush(true));
  process.once("exit", () => flush(false));
}
