// The test bed's SurrealDB: `surreal start` serves SurrealDB's HTTP API (/health, /version, /sql,
// /export, /import, with Surreal-NS/Surreal-DB headers and basic auth) over the npm registry's
// embedded engine (@surrealdb/node, SurrealDB 3) on a surrealkv store; `surreal sql|export|import|
// isready|version` are the CLI's subcommands with its flag names, talking to that API. The real
// server cannot be pulled or built here; its engine and its HTTP contract are what an upgrade tool
// meets, so those are real and the rest is small.
import http from "node:http";
import fs from "node:fs";
import { Surreal } from "surrealdb";
import { createNodeEngines } from "@surrealdb/node";

const VERSION = "surrealdb-3.0.2";

function die(message) {
  process.stderr.write(`There was a problem: ${message}\n`);
  process.exit(1);
}

// The CLI's flags and their aliases, as `surreal` 2.x/3.x spells them.
const ALIASES = {
  "--endpoint": "endpoint", "--conn": "endpoint", "-e": "endpoint",
  "--username": "user", "--user": "user", "-u": "user",
  "--password": "pass", "--pass": "pass", "-p": "pass",
  "--namespace": "ns", "--ns": "ns",
  "--database": "db", "--db": "db",
  "--bind": "bind", "-b": "bind",
  "--log": "log", "-l": "log",
};
const SWITCHES = new Set(["--hide-welcome", "--pretty", "--json", "--unauthenticated", "--multi"]);

function parse(args) {
  const flags = {}, positional = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const [name, inline] = a.startsWith("--") && a.includes("=") ? a.split(/=(.*)/s) : [a, undefined];
    if (ALIASES[name]) {
      const value = inline ?? args[++i];
      if (value === undefined) die(`${name} needs a value`);
      flags[ALIASES[name]] = value;
    } else if (SWITCHES.has(name)) {
      flags[name.slice(2)] = true;
    } else if (a.startsWith("-") && a !== "-") {
      die(`unexpected argument '${a}' found`);
    } else {
      positional.push(a);
    }
  }
  return { flags, positional };
}

// --- the server ---------------------------------------------------------------------------------
async function start({ flags, positional }) {
  const path = positional[0] ?? "memory";
  const bind = flags.bind ?? "127.0.0.1:8000";
  const [host, port] = bind.split(/:(?=\d+$)/);
  const user = flags.user ?? process.env.SURREAL_USER;
  const pass = flags.pass ?? process.env.SURREAL_PASS;
  const db = new Surreal({ engines: createNodeEngines() });
  // `memory`, or a store path as the real server takes it (rocksdb:, surrealkv:, file:); every
  // store here is the embedded engine's surrealkv.
  const store = path === "memory" ? "mem://" : `surrealkv://${path.replace(/^[a-z]+:(\/\/)?/, "")}`;
  await db.connect(store);
  // One embedded session: requests take turns, each with its own namespace and database.
  let turn = Promise.resolve();
  const serial = (work) => (turn = turn.then(work, work));

  const authorised = (req) => {
    if (!user) return true;
    const [kind, token] = (req.headers.authorization ?? "").split(" ");
    if (kind !== "Basic" || !token) return false;
    return Buffer.from(token, "base64").toString() === `${user}:${pass}`;
  };
  const body = (req) => new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString()));
    req.on("error", reject);
  });
  const scope = (req) => ({
    namespace: req.headers["surreal-ns"] ?? req.headers.ns,
    database: req.headers["surreal-db"] ?? req.headers.db,
  });
  const send = (res, status, text, type = "application/json") => {
    res.writeHead(status, { "content-type": type });
    res.end(text);
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    try {
      if (url.pathname === "/health" || url.pathname === "/status") return send(res, 200, "");
      if (url.pathname === "/version") return send(res, 200, VERSION, "text/plain");
      if (!authorised(req)) {
        return send(res, 401, JSON.stringify({ code: 401, details: "Authentication failed", information: "There was a problem with authentication" }));
      }
      const where = scope(req);
      if (url.pathname === "/sql" && req.method === "POST") {
        const text = await body(req);
        const out = await serial(async () => {
          await db.use(where);
          const results = [];
          const started = process.hrtime.bigint();
          try {
            const rows = await db.query(text).collect();
            for (const r of rows) results.push({ result: r ?? null, status: "OK", time: `${Number(process.hrtime.bigint() - started) / 1e6}ms` });
          } catch (err) {
            results.push({ result: String(err.message ?? err), status: "ERR", time: "0ms" });
          }
          return results;
        });
        return send(res, 200, JSON.stringify(out));
      }
      if (url.pathname === "/export" && req.method === "GET") {
        if (!where.namespace || !where.database) return send(res, 400, JSON.stringify({ details: "Specify a namespace and database to export" }));
        const text = await serial(async () => { await db.use(where); return await db.export(); });
        return send(res, 200, text, "application/octet-stream");
      }
      if (url.pathname === "/import" && req.method === "POST") {
        if (!where.namespace || !where.database) return send(res, 400, JSON.stringify({ details: "Specify a namespace and database to import into" }));
        const text = await body(req);
        await serial(async () => { await db.use(where); await db.import(text); });
        return send(res, 200, JSON.stringify([{ status: "OK" }]));
      }
      return send(res, 404, JSON.stringify({ code: 404, details: "Requested resource not found" }));
    } catch (err) {
      return send(res, 400, JSON.stringify({ code: 400, details: "There was a problem with the database", information: String(err.message ?? err) }));
    }
  });
  const stop = async () => { server.close(); await db.close().catch(() => {}); process.exit(0); };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  server.listen(Number(port), host, () => {
    process.stdout.write(`INFO surrealdb::net: Started web server on ${bind}\n`);
  });
}

// --- the client subcommands ---------------------------------------------------------------------
function client(flags) {
  const endpoint = (flags.endpoint ?? "http://127.0.0.1:8000").replace(/^ws/, "http").replace(/\/rpc$/, "");
  const headers = {};
  if (flags.user) headers.authorization = `Basic ${Buffer.from(`${flags.user}:${flags.pass ?? ""}`).toString("base64")}`;
  if (flags.ns) headers["surreal-ns"] = flags.ns;
  if (flags.db) headers["surreal-db"] = flags.db;
  return async (method, path, text) => {
    let res;
    try {
      res = await fetch(`${endpoint}${path}`, { method, headers, body: text });
    } catch (err) {
      die(`There was an error with the remote request: ${err.cause?.code ?? err.message}`);
    }
    const out = await res.text();
    if (!res.ok) die(`There was an error with the remote request: ${res.status} ${out}`);
    return out;
  };
}

async function stdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString();
}

async function sql({ flags }) {
  const call = client(flags);
  const text = await stdin();
  const results = JSON.parse(await call("POST", "/sql", text));
  let failed = false;
  for (const r of results) {
    if (r.status === "ERR") {
      process.stderr.write(`There was a problem with the database: ${r.result}\n`);
      failed = true;
    } else {
      process.stdout.write(`${JSON.stringify(r.result)}\n`);
    }
  }
  process.exit(failed ? 1 : 0);
}

async function exportCmd({ flags, positional }) {
  if (!flags.ns || !flags.db) die("--namespace and --database are required");
  const text = await client(flags)("GET", "/export");
  const file = positional[0] ?? "-";
  if (file === "-") process.stdout.write(text);
  else fs.writeFileSync(file, text);
}

async function importCmd({ flags, positional }) {
  if (!flags.ns || !flags.db) die("--namespace and --database are required");
  if (!positional[0]) die("the following required arguments were not provided: <FILE>");
  const text = fs.readFileSync(positional[0], "utf8");
  await client(flags)("POST", "/import", text);
  process.stdout.write("The SurrealQL file was imported successfully\n");
}

async function isready({ flags }) {
  await client(flags)("GET", "/health");
  process.stdout.write("OK\n");
}

const [command, ...rest] = process.argv.slice(2);
const commands = { start, sql, export: exportCmd, import: importCmd, isready, version: async () => process.stdout.write(`${VERSION.replace("surrealdb-", "")} for linux on x86_64\n`) };
if (!commands[command]) die(`unrecognized subcommand '${command ?? ""}'`);
await commands[command](parse(rest));
