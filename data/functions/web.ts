// Example function for the raw route (/fn/web/...): a small web service, not an RPC.
//   /events      Server-Sent Events: three events, half a second apart
//   /slow?ms=N   answers after N ms (default 2000), to try the deadline (X-Timeout-Ms)
//   anything     echoes what it got: method, path, query, headers and the body's length
// The body is counted as it streams in, never held whole, so an upload of any size costs no memory.
const port = Number(Deno.env.get("PORT") ?? "8080");

Deno.serve({ port, hostname: "0.0.0.0" }, async (req) => {
  const url = new URL(req.url);
  if (url.pathname === "/events") return events();
  if (url.pathname === "/slow") {
    const ms = Math.min(Number(url.searchParams.get("ms") ?? "2000") || 0, 60_000);
    await new Promise((resolve) => setTimeout(resolve, ms));
    return Response.json({ slept_ms: ms });
  }
  let bodyBytes = 0;
  if (req.body) for await (const chunk of req.body) bodyBytes += chunk.length;
  return Response.json({
    method: req.method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: Object.fromEntries(req.headers),
    body_bytes: bodyBytes,
  });
});

function events(): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream({
    async start(controller) {
      for (let i = 1; i <= 3; i++) {
        controller.enqueue(encoder.encode(`id: ${i}\nevent: tick\ndata: {"n": ${i}, "at": "${new Date().toISOString()}"}\n\n`));
        if (i < 3) await new Promise((resolve) => setTimeout(resolve, 500));
      }
      controller.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}
