// check.mjs - runs each CEL rule of the kars CRDs with a real CEL evaluator
// (@bufbuild/cel) on the nodes the C validator saw, and compares verdicts.
//
// Input: JSON lines {"cel", "self", "ok"} written by unit/test_validate with
// KARS_CEL_CASES set. JSON objects become CEL maps, integers CEL ints, as the
// API server presents a custom resource to its rules. A rule that errors
// (e.g. no such key) fails, as it does in the API server. Every rule must be
// seen both passing and failing, so no rule goes untested on one side.
// Prints one line per disagreement and "e2e/cel: N passed, N failed".
import { readFileSync } from "node:fs";
import { run, celMap, celList, isCelError } from "@bufbuild/cel";

function toCel(v) {
  if (Array.isArray(v)) return celList(v.map(toCel));
  if (v !== null && typeof v === "object")
    return celMap(new Map(Object.entries(v).map(([k, x]) => [k, toCel(x)])));
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  return v;
}

const lines = readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean);
const seen = new Map(); // rule -> {true: n, false: n}
let passed = 0, failed = 0;
for (const line of lines) {
  const { cel, self, ok } = JSON.parse(line);
  let got;
  try {
    const r = run(cel, { self: toCel(self) });
    got = isCelError(r) ? false : r === true;
  } catch (e) {
    got = false;
  }
  const s = seen.get(cel) || { true: 0, false: 0 };
  s[got] += 1;
  seen.set(cel, s);
  if (got === ok) {
    passed++;
  } else {
    failed++;
    console.log(`FAIL ${cel}: CEL says ${got}, C says ${ok}, on ${JSON.stringify(self).slice(0, 300)}`);
  }
}
for (const [cel, s] of seen) {
  if (s.true && s.false) {
    passed++;
  } else {
    failed++;
    console.log(`FAIL ${cel}: only seen ${s.true ? "passing" : "failing"}; add a case for the other side`);
  }
}
console.log(`rules: ${seen.size}, evaluations: ${lines.length}`);
console.log(`e2e/cel: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
