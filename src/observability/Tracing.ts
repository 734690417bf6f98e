/**
 * Tracing with OpenTelemetry (issue 13): one order is one trace from its POST to OrderPaid.
 *
 *   POST /orders (HTTP server span) → OrderActors.PlaceOrder → EventStore.append   (trace context stored in
 *   the events' metadata: `currentTraceContext`) → relay: Relay.publish, a trace of its own LINKED to each
 *   event's trace (`linksFromMetadata`); the Kafka headers carry the event's `traceparent`/`tracestate` →
 *   worker: PaymentWorker.consume continues the POST's trace (`withRemoteParent(headers)`) → StartPayment →
 *   PaymentGateway.charge (client span of the provider's HTTP call) → RecordPaymentSucceeded → append OrderPaid.
 *   Work batched across callers (a group-committed append, a group read, the inbox lookup: src/Batcher.ts) runs
 *   in a span of its own (EventStore.appendBatch, …) under its first caller's span, linked to the others'.
 *
 * Off by default, and then free: `traced` returns the effect as it is, `currentTraceContext` is empty.
 * Turned on by the environment (`tracingLayer`):
 *   TRACING=zipkin                      Zipkin exporter to ZIPKIN_URL (default http://127.0.0.1:19411/api/v2/spans)
 *   OTEL_TRACES_EXPORTER=otlp, or OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set
 *                                       OTLP/HTTP exporter (JSON), configured by the standard OTEL_* variables
 *   OTEL_SDK_DISABLED=true              off, whatever else is set
 *   OTEL_SERVICE_NAME                   service name (default orders-es); the role is the resource attribute
 *                                       `orders.role`; OTEL_BSP_SCHEDULE_DELAY: export delay in ms (default 1000)
 */
import type { HrTime } from "@opentelemetry/api"
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base"
import { Config, Effect, Layer, Option, Tracer } from "effect"

export const TracingConfig = Config.all({
  tracing: Config.string("TRACING").pipe(Config.withDefault("")),
  zipkinUrl: Config.string("ZIPKIN_URL").pipe(Config.withDefault("http://127.0.0.1:19411/api/v2/spans")),
  tracesExporter: Config.string("OTEL_TRACES_EXPORTER").pipe(Config.withDefault("")),
  otlpEndpoint: Config.option(Config.string("OTEL_EXPORTER_OTLP_ENDPOINT")),
  otlpTracesEndpoint: Config.option(Config.string("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
  disabled: Config.boolean("OTEL_SDK_DISABLED").pipe(Config.withDefault(false)),
  serviceName: Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault("orders-es")),
  scheduleDelayMs: Config.integer("OTEL_BSP_SCHEDULE_DELAY").pipe(Config.withDefault(1000))
})
export type TracingConfig = Config.Config.Success<typeof TracingConfig>

/** Which exporter the configuration asks for, if any. */
export const exporterKind = (c: TracingConfig): "zipkin" | "otlp" | "none" => {
  if (c.disabled || c.tracesExporter === "none") return "none"
  if (c.tracing.toLowerCase() === "zipkin" || c.tracesExporter === "zipkin") return "zipkin"
  if (
    c.tracing.toLowerCase() === "otlp" || c.tracesExporter === "otlp" || Option.isSome(c.otlpEndpoint) ||
    Option.isSome(c.otlpTracesEndpoint)
  ) return "otlp"
  return "none"
}

const toMicros = (t: HrTime): HrTime => [t[0], Math.round(t[1] / 1000) * 1000]

/**
 * Effect's clock has sub-microsecond precision, so the Zipkin exporter writes timestamps such as
 * 1795614817658421.8; the Zipkin server refuses the whole batch ("Expected a long", HTTP 400). Spans go
 * to it rounded to whole microseconds (its unit).
 */
export const wholeMicroseconds = (exporter: SpanExporter): SpanExporter => ({
  export: (spans, done) =>
    exporter.export(
      spans.map((span) =>
        Object.create(span, {
          startTime: { value: toMicros(span.startTime) },
          endTime: { value: toMicros(span.endTime) },
          duration: { value: toMicros(span.duration) },
          events: { value: span.events.map((e) => ({ ...e, time: toMicros(e.time) })) }
        }) as ReadableSpan
      ),
      done
    ),
  shutdown: () => exporter.shutdown(),
  ...(exporter.forceFlush ? { forceFlush: () => exporter.forceFlush!() } : {})
})

// Whether an exporting tracer is installed in this process. Set by the tracing layer; read by `traced` and
// `currentTraceContext` so that with tracing off the hot path builds no spans and stores no trace context.
let exporting = false
export const tracingEnabled = () => exporting

/** Marks this process as exporting spans for the layer's life (with an exporting tracer: `tracingLayer`, or a
 * test's recording one). */
export const exportingSpans = Layer.scopedDiscard(
  Effect.acquireRelease(Effect.sync(() => (exporting = true)), () => Effect.sync(() => (exporting = false)))
)

/**
 * The OpenTelemetry SDK as Effect's tracer, from the environment (see the module header); Effect's tracer
 * disabled when tracing is off. `role` names the process's roles in the resource. Spans are flushed when the layer closes.
 */
export const tracingLayer = (role: string) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const config = yield* TracingConfig
      const kind = exporterKind(config)
      // off: libraries' own spans (@effect/sql builds one per statement, with its SQL text) are not built either
      if (kind === "none") return Layer.setTracerEnabled(false)
      // the SDK is loaded only when asked for: every process (the CLI too) starts faster without it
      const [{ NodeSdk }, { BatchSpanProcessor }] = yield* Effect.promise(() =>
        Promise.all([import("@effect/opentelemetry"), import("@opentelemetry/sdk-trace-base")])
      )
      const exporter: SpanExporter = kind === "zipkin"
        ? wholeMicroseconds(
          new (yield* Effect.promise(() => import("@opentelemetry/exporter-zipkin"))).ZipkinExporter({
            url: config.zipkinUrl,
            serviceName: config.serviceName
          })
        )
        : new (yield* Effect.promise(() => import("@opentelemetry/exporter-trace-otlp-http"))).OTLPTraceExporter()
      yield* Effect.logInfo("tracing on").pipe(
        Effect.annotateLogs({ type: "STARTUP", exporter: kind, ...(kind === "zipkin" ? { url: config.zipkinUrl } : {}) })
      )
      return Layer.merge(
        NodeSdk.layer(() => ({
          resource: { serviceName: config.serviceName, attributes: { "orders.role": role, "process.pid": process.pid } },
          spanProcessor: new BatchSpanProcessor(exporter, { scheduledDelayMillis: config.scheduleDelayMs })
        })),
        exportingSpans
      )
    })
  )

// ---------------------------------------------------------------------------------------------------------
// Spans

/** `effect` in a span named `name` when tracing is on; the effect itself (no span, no cost) when off. */
export const traced = (name: string, options: Tracer.SpanOptions = {}) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => (exporting ? Effect.withSpan(effect, name, { captureStackTrace: false, ...options }) : effect))

// ---------------------------------------------------------------------------------------------------------
// W3C trace context (https://www.w3.org/TR/trace-context/)

export interface TraceContext {
  readonly traceparent?: string
  readonly tracestate?: string
}

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

export const formatTraceparent = (span: { traceId: string; spanId: string; sampled: boolean }) =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

/** The span a `traceparent` names, as an Effect external span; None when it is missing or malformed. */
export const parseTraceparent = (traceparent: string | undefined): Option.Option<Tracer.ExternalSpan> => {
  const m = traceparent === undefined ? null : traceparentPattern.exec(traceparent.trim())
  if (m === null || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return Option.none()
  return Option.some(Tracer.externalSpan({ traceId: m[1]!, spanId: m[2]!, sampled: (parseInt(m[3]!, 16) & 1) === 1 }))
}

/**
 * The current span's W3C trace context, to store in an event's metadata (docs/ARCHITECTURE.md "Event store
 * contract") and carry in its Kafka headers; empty when tracing is off or no span is open.
 */
export const currentTraceContext: Effect.Effect<TraceContext> = Effect.suspend(() =>
  exporting
    ? Effect.map(Effect.option(Effect.currentSpan), (span) =>
      Option.match(span, {
        onNone: (): TraceContext => ({}),
        onSome: (s): TraceContext => ({ traceparent: formatTraceparent(s) })
      }))
    : Effect.succeed({})
)

/** Headers (Kafka, HTTP) → `effect` runs as a child of the span their `traceparent` names (as it is without one). */
export const withRemoteParent = (headers: Readonly<Record<string, string | undefined>>) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Option.match(parseTraceparent(headers.traceparent), {
    onNone: () => effect,
    onSome: (parent) => Effect.withParentSpan(effect, parent)
  })

/** Span links to the traces that wrote these events (the relay's publish spans one batch, many traces). */
export const linksFromMetadata = (
  metadata: ReadonlyArray<{ readonly traceparent?: string | undefined }>
): ReadonlyArray<Tracer.SpanLink> => {
  const links: Array<Tracer.SpanLink> = []
  const seen = new Set<string>()
  for (const m of metadata) {
    const tp = m.traceparent
    if (tp === undefined || seen.has(tp)) continue
    seen.add(tp)
    Option.map(parseTraceparent(tp), (span) => links.push({ _tag: "SpanLink", span, attributes: {} }))
  }
  return links
}
