/** GET /tasks (paged history, filterable by status), GET /tasks/:taskId and its /events. */
import { Elysia, t } from "elysia";
import { TASK_EVENT_KINDS, TASK_STATUSES } from "../core/ports.ts";
import { TIMELINE_HEAD, TIMELINE_LIMIT } from "../core/task-timeline.ts";
import { ELYSIA_CONFIG } from "./config.ts";
import type { HttpDeps, TaskStatus, TaskTimelineView, TaskView } from "./deps.ts";
import { BadRequestError } from "./errors.ts";
import { ErrorBody, Int, IsoTime, isoOrNull, OneOf } from "./models.ts";
import { parseCount, parseLimit } from "./query.ts";

export const TASK_LIMIT_DEFAULT = 50;
export const TASK_LIMIT_MAX = 500;
/**
 * Most bytes of task objects (as JSON) one page carries. A task's own size is
 * bounded (its free text is cut at 4 KiB, src/core/text-bound.ts), but JSON can
 * escape one byte into six and 500 of them still add up: past this budget the
 * page ends early and says so, and the client goes on from offset + tasks.length.
 */
export const TASK_PAGE_MAX_BYTES = 1024 * 1024;

const STATUSES = TASK_STATUSES;

export const Task = t.Object({
  taskId: t.String(),
  taskName: t.String(),
  status: OneOf(STATUSES),
  dispatchedTo: t.Union([t.String(), t.Null()], {
    description: "daemonId of the daemon it went to",
  }),
  receivedAt: t.String({ format: "date-time" }),
  dispatchedAt: IsoTime,
  completedAt: IsoTime,
  error: t.Union([t.String(), t.Null()]),
  machineId: t.Union([t.String(), t.Null()], { description: "machineId of the daemon holding it" }),
  lastReportedStatus: t.Union([t.String(), t.Null()], {
    description: "newStatus of the daemon's latest taskStatusChange",
  }),
  attempts: Int({ minimum: 1, description: "spawnTask received again after the task ended" }),
});

export const TaskPage = t.Object({
  tasks: t.Array(Task),
  total: Int({ minimum: 0, description: "Rows matching the status filter" }),
  limit: Int({ minimum: 1, maximum: TASK_LIMIT_MAX }),
  offset: Int({ minimum: 0 }),
  truncated: t.Boolean({
    description: `The page ended before \`limit\` rows because it reached ${TASK_PAGE_MAX_BYTES} bytes of tasks; the next page starts at \`offset\` + the rows returned`,
  }),
});

const EVENT_KINDS = ["received", "dispatched", ...TASK_EVENT_KINDS] as const;

const Count = (description: string) => Int({ minimum: 0, description });

export const TaskEvent = t.Object({
  at: t.String({ format: "date-time" }),
  kind: OneOf(EVENT_KINDS, {
    description:
      "received (the spawnTask; `detail` names the attempt), queued (no daemon had a free slot; `detail`: how many tasks were ahead), dispatched (to `machineId`; `detail` names the daemon), commandsDelivered (control commands that waited for the task were sent; `detail`: how many), statusReported (a taskStatusChange; `detail`: its newStatus), output (output counts, written at most every 10 s while output flows), away (its daemon disconnected: the task waits for the grace period), reattached (its machine came back in time), throttled (its daemon was read more slowly; `detail`: the budget it was over), then completed, failed, lost or cancelled (`detail`: the error)",
  }),
  machineId: t.Union([t.String(), t.Null()], {
    description: "The machine holding the task then; null before dispatch",
  }),
  detail: t.Union([t.String(), t.Null()], {
    description: "What the kind needs said (see `kind`); up to 1 KiB",
  }),
  upstream: t.Union([t.Literal("sent"), t.Literal("held"), t.Null()], {
    description:
      "On the end: whether the result went straight to the server (sent) or waited in the durable outbox (held: no link, backpressure or a backlog); null on other events",
  }),
  outputFrames: Count("Output frames relayed for the task by then"),
  outputBytes: Count("Their UTF-8 bytes"),
});

export const TaskTimeline = t.Object({
  taskId: t.String(),
  status: OneOf(STATUSES),
  attempts: Int({ minimum: 1, description: "The events are those of the latest attempt" }),
  events: t.Array(TaskEvent, { description: "In the order they happened" }),
  omitted: Count(
    `Events left out: a task keeps at most ${TIMELINE_LIMIT} besides received and dispatched, its first ${TIMELINE_HEAD} and its newest`,
  ),
  omittedAfter: t.Union([Int({ minimum: 0 }), t.Null()], {
    description: "The index in `events` after which the omitted ones were; null when none was",
  }),
  outputFrames: Count("Output frames relayed so far (counted live while the task runs)"),
  outputBytes: Count("Their UTF-8 bytes"),
});

export function timelineBody(view: TaskTimelineView) {
  return {
    taskId: view.task.taskId,
    status: view.task.status,
    attempts: view.task.attempts,
    events: view.events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
    omitted: view.omitted,
    omittedAfter: view.omittedAfter,
    outputFrames: view.outputFrames,
    outputBytes: view.outputBytes,
  };
}

// Strings on purpose: the handler parses them so that "abc" gets a 400 naming the parameter.
const TaskListQuery = t.Object(
  {
    limit: t.Optional(
      t.String({
        description: `Page size, default ${TASK_LIMIT_DEFAULT}, clamped to 1..${TASK_LIMIT_MAX} (0 → 1). Non-numeric or negative: 400.`,
        examples: ["50"],
      }),
    ),
    offset: t.Optional(
      t.String({
        description: "Rows to skip, default 0. Non-numeric or negative: 400.",
        examples: ["0"],
      }),
    ),
    status: t.Optional(
      t.String({
        description: `Only tasks with this status: ${STATUSES.join(" | ")}`,
        enum: [...STATUSES],
      }),
    ),
  },
  // Unknown parameters (a cache-buster like `_=123`) are ignored, as the original did.
  { additionalProperties: true },
);

export function taskBody(task: TaskView) {
  return {
    taskId: task.taskId,
    taskName: task.taskName,
    status: task.status,
    dispatchedTo: task.dispatchedTo,
    receivedAt: new Date(task.receivedAt).toISOString(),
    dispatchedAt: isoOrNull(task.dispatchedAt),
    completedAt: isoOrNull(task.completedAt),
    error: task.error,
    machineId: task.machineId,
    lastReportedStatus: task.lastReportedStatus,
    attempts: task.attempts,
  };
}

type TaskBody = ReturnType<typeof taskBody>;

/**
 * The rows that fit in `maxBytes` of JSON, in order; always at least one, so
 * that paging moves on even past a row larger than the budget.
 */
export function fitPage(rows: readonly TaskBody[], maxBytes: number) {
  let used = 0;
  let n = 0;
  for (const row of rows) {
    // The comma between array elements counts too.
    used += Buffer.byteLength(JSON.stringify(row), "utf8") + 1;
    if (used > maxBytes && n > 0) break;
    n += 1;
  }
  return { tasks: rows.slice(0, n), truncated: n < rows.length };
}

function parseStatus(raw: string | undefined): TaskStatus | undefined {
  if (raw === undefined) return undefined;
  const found = STATUSES.find((s) => s === raw);
  if (!found)
    throw new BadRequestError(`'status' must be one of ${STATUSES.join(", ")}, got '${raw}'`);
  return found;
}

export function taskRoutes(deps: HttpDeps) {
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.tasks" })
    .get(
      "/tasks",
      ({ query }) => {
        const limit = parseLimit(query.limit, TASK_LIMIT_DEFAULT, TASK_LIMIT_MAX);
        const offset = parseCount("offset", query.offset, 0);
        const status = parseStatus(query.status);
        const page = deps.listTasks(status ? { limit, offset, status } : { limit, offset });
        const { tasks, truncated } = fitPage(page.tasks.map(taskBody), TASK_PAGE_MAX_BYTES);
        return { tasks, total: page.total, limit, offset, truncated };
      },
      {
        query: TaskListQuery,
        response: { 200: TaskPage, 400: ErrorBody },
        detail: {
          summary: "Task history",
          description:
            "Tasks the relay received, newest arrival first (a new attempt of an ended task is the newest), one page at a time; `total` counts rows matching `status`. A page holds at most `limit` rows and about 1 MiB of them (`truncated` says it ended early).",
          tags: ["tasks"],
        },
      },
    )
    .get(
      "/tasks/:taskId",
      ({ params, status }) => {
        const task = deps.getTask(params.taskId);
        return task ? taskBody(task) : status(404, { error: `task '${params.taskId}' not found` });
      },
      {
        params: t.Object({ taskId: t.String({ description: "The server's taskId" }) }),
        response: { 200: Task, 404: ErrorBody },
        detail: {
          summary: "One task",
          description: "A task by id, as in GET /tasks.",
          tags: ["tasks"],
        },
      },
    )
    .get(
      "/tasks/:taskId/events",
      ({ params, status }) => {
        const view = deps.taskTimeline(params.taskId);
        return view
          ? timelineBody(view)
          : status(404, { error: `task '${params.taskId}' not found` });
      },
      {
        params: t.Object({ taskId: t.String({ description: "The server's taskId" }) }),
        response: { 200: TaskTimeline, 404: ErrorBody },
        detail: {
          summary: "What happened to a task",
          description: `A task's timeline, in order: received, queued, dispatched to a machine, waiting commands delivered, status changes, output counts, its daemon away and back, throttling, and its end with the error and where the result went. Output frames are counted in memory and stored with the next event, so \`outputFrames\` is live while the task runs. At most ${TIMELINE_LIMIT} stored events per task (the first ${TIMELINE_HEAD} and the newest); they are pruned with the task.`,
          tags: ["tasks"],
        },
      },
    );
}
