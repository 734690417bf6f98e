/**
 * The program. One binary, several roles (DESIGN §11):
 *   all (default)  every role in one process, for development
 *   api            the HTTP API
 *   migrate        apply pending migrations and exit
 * The database is created when missing and migrations are applied at startup of every role.
 * SIGTERM/SIGINT: the server stops taking connections and in-flight requests finish (runMain interrupts).
 */
import { HttpServer } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { Domain, HttpLive, PgStores } from "./App.js"
import { AppConfig } from "./Config.js"
import { LoggingLive } from "./observability/Logging.js"
import { MigrationsLive, PgLive } from "./Sql.js"

const roles = ["all", "api", "migrate"] as const
type Role = (typeof roles)[number]

const role = (process.argv[2] ?? "all") as Role
if (!roles.includes(role)) {
  process.stderr.write(`unknown role ${JSON.stringify(role)}; one of: ${roles.join(", ")}\n`)
  process.exit(2)
}

const Database = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) => MigrationsLive.pipe(Layer.provideMerge(PgLive(config.databaseUrl, config.databasePoolSize))))
)

const Api = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) =>
    Layer.effectDiscard(
      Effect.flatMap(HttpServer.HttpServer, (server) =>
        Effect.logInfo("listening").pipe(
          Effect.annotateLogs({ type: "STARTUP", role, address: HttpServer.formatAddress(server.address) })
        ))
    ).pipe(Layer.provide(HttpLive(config)), Layer.provide(Domain), Layer.provide(PgStores)))
)

const program = role === "migrate"
  ? Effect.scoped(Layer.build(Database)).pipe(Effect.zipRight(Effect.logInfo("migrations applied").pipe(Effect.annotateLogs({ type: "STARTUP" }))))
  : Layer.launch(Api.pipe(Layer.provide(Database)))

program.pipe(Effect.provide(LoggingLive), NodeRuntime.runMain({ disablePrettyLogger: true }))
