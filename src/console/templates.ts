/**
 * What a new function starts from: a complete HTTP server listening on PORT, as README's "Writing a
 * function" asks, in each language. Both answer GET / at once (the readiness probe) and read an
 * optional GREETING from the function's env settings.
 */
export const TEMPLATES = {
	python: `import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        # The platform polls GET / until it answers: that is how it knows the server is ready.
        self.send_response(204)
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        data = json.loads(self.rfile.read(length) or b"{}")
        name = data.get("name", "World") if isinstance(data, dict) else "World"
        greeting = os.environ.get("GREETING", "Hello")
        body = json.dumps({"message": f"{greeting}, {name}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
`,
	deno: `// The platform polls GET / until it answers, then sends each invocation's input as a JSON POST /.
Deno.serve({ port: Number(Deno.env.get("PORT") ?? "8080"), hostname: "0.0.0.0" }, async (req) => {
  if (req.method !== "POST") return new Response(null, { status: 204 });
  const data = await req.json().catch(() => ({}));
  const name = typeof data?.name === "string" ? data.name : "World";
  const greeting = Deno.env.get("GREETING") ?? "Hello";
  return Response.json({ message: \`\${greeting}, \${name}\` });
});
`,
} as const;

export type Language = keyof typeof TEMPLATES;
