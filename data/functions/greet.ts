// Example function: Deno.serve answering {"message": "Hello, <name>"}.
const port = Number(Deno.env.get("PORT") ?? "8080");

Deno.serve({ port, hostname: "0.0.0.0" }, async (req) => {
  let name = "World";
  if (req.method === "POST") {
    const data = await req.json().catch(() => ({}));
    if (data && typeof data.name === "string") name = data.name;
  }
  return Response.json({ message: `Hello, ${name}` });
});
