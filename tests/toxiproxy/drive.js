// Drives unplug's toxiproxy API with toxiproxy-node-client (npm, installed unchanged by
// scripts/third-party-brokers.sh): one JSON command a line on stdin, one JSON answer a line on
// stdout, {"ok": ...} or {"error": "..."} (the library's own message).
//
//   {"op":"version"} {"op":"create","body":{...}} {"op":"get","proxy":P} {"op":"all"}
//   {"op":"update","proxy":P,"body":{...}} {"op":"remove","proxy":P} {"op":"reset"}
//   {"op":"populate","body":[...]} {"op":"addToxic","proxy":P,"body":{...}}
//   {"op":"getToxic","proxy":P,"name":T} {"op":"updateToxic","proxy":P,"name":T,"body":{...}}
//   {"op":"removeToxic","proxy":P,"name":T}
"use strict";
const readline = require("readline");
const { Toxiproxy } = require("toxiproxy-node-client");

const toxiproxy = new Toxiproxy(process.argv[2]);

async function run(c) {
  switch (c.op) {
    case "version":
      return await toxiproxy.getVersion();
    case "create":
      return (await toxiproxy.createProxy(c.body)).toJson();
    case "get":
      return (await toxiproxy.get(c.proxy)).toJson();
    case "all": {
      const all = await toxiproxy.getAll();
      return Object.fromEntries(Object.entries(all).map(([n, p]) => [n, p.toJson()]));
    }
    case "update":
      return (await (await toxiproxy.get(c.proxy)).update(c.body)).toJson();
    case "remove":
      await (await toxiproxy.get(c.proxy)).remove();
      return null;
    case "reset":
      await toxiproxy.reset();
      return null;
    case "populate": {
      const made = await toxiproxy.populate(c.body);
      return Object.keys(made).sort();
    }
    case "addToxic":
      return (await (await toxiproxy.get(c.proxy)).addToxic(c.body)).toJson();
    case "getToxic":
      return (await (await toxiproxy.get(c.proxy)).getToxic(c.name)).toJson();
    case "updateToxic": {
      const t = await (await toxiproxy.get(c.proxy)).getToxic(c.name);
      return (await t.update(c.body)).toJson();
    }
    case "removeToxic": {
      const t = await (await toxiproxy.get(c.proxy)).getToxic(c.name);
      await t.remove();
      return null;
    }
    default:
      throw new Error("unknown op " + c.op);
  }
}

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  queue = queue.then(async () => {
    let answer;
    try {
      answer = { ok: await run(JSON.parse(line)) };
    } catch (e) {
      answer = { error: String(e && e.message) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  });
});
