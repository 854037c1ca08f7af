import { h, when } from "../../ui/dom";
import { attempt, type Page } from "../context";

interface SupportCode {
  code: string;
  expires_at: string | number;
}

export const codesPage: Page = async (ctx) => {
  const result = h("div", { id: "code-result", "aria-live": "polite" });
  const create = h("button", { type: "button" }, "Create support code");
  create.addEventListener("click", () =>
    attempt(ctx, async () => {
      const code = await ctx.api.post<SupportCode>("/api/support-codes");
      const copy = h("button", { type: "button" }, "Copy");
      copy.addEventListener("click", () => void navigator.clipboard.writeText(code.code).then(() => ctx.layout.say("Code copied.")));
      result.replaceChildren(
        h("p", { class: "code" }, h("output", { id: "support-code" }, code.code), " ", copy),
        h("p", {}, `Valid until ${when(code.expires_at)}. Read it to the person you help; they run:`),
        h("pre", {}, h("code", {}, `reach agent --server ${location.origin} --code ${code.code}`)),
      );
    }),
  );
  ctx.layout.show(
    "Support codes",
    h("p", {}, "A support code lets a person you help start an attended session. They are asked to accept before you see anything."),
    create,
    result,
  );
};
