// The forms' own checks and what they show before anything is sent, and the helpers they
// rest on. What the server answers is proven in the browser tests (tests/test_web_app.py).
import { act } from "react";
import { createRoot } from "react-dom/client";
import type { Root } from "react-dom/client";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applyAccent, contrast, day, minorUnits, money } from "./format";
import { AcceptInvitationScreen, ResetPasswordScreen, SignIn, passwordProblem } from "./screens/auth";
import { MAX_MESSAGE, messageProblem } from "./screens/messages";
import { amountProblem } from "./screens/pay";
import { requestProblem } from "./screens/requests";
import { SessionProvider } from "./session";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let container: HTMLDivElement;
let root: Root;

beforeEach(() => {
  container = document.createElement("div");
  document.body.appendChild(container);
  root = createRoot(container);
});

afterEach(() => {
  act(() => root.unmount());
  container.remove();
});

async function show(path: string, pattern: string, element: JSX.Element) {
  await act(async () => {
    root.render(
      <MemoryRouter initialEntries={[path]} future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
        <SessionProvider>
          <Routes>
            <Route path={pattern} element={element} />
          </Routes>
        </SessionProvider>
      </MemoryRouter>,
    );
  });
}

function field(label: string): HTMLInputElement {
  const found = [...container.querySelectorAll("label")].find((l) => l.textContent === label);
  if (!found) throw new Error(`no field labelled ${label}`);
  return container.querySelector(`#${found.htmlFor}`) as HTMLInputElement;
}

async function type(label: string, value: string) {
  const input = field(label);
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")!.set!;
  await act(async () => {
    setter.call(input, value);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });
}

async function press(name: string) {
  const button = [...container.querySelectorAll("button")].find((b) => b.textContent === name);
  if (!button) throw new Error(`no button ${name}`);
  await act(async () => button.click());
}

function alerts(): string[] {
  return [...container.querySelectorAll('[role="alert"]')].map((a) => a.textContent ?? "");
}

describe("sign-in form", () => {
  it("asks for the login and the password before sending anything", async () => {
    await show("/acme", "/:slug", <SignIn />);
    await press("Sign in");
    expect(alerts()).toEqual(["Enter your email or username."]);
    await type("Email or username", "harbourview");
    await press("Sign in");
    expect(alerts()).toEqual(["Enter your password."]);
    expect(field("Email or username").getAttribute("aria-invalid")).toBeNull();
  });

  it("wants an email address for a link or a reset", async () => {
    await show("/acme", "/:slug", <SignIn />);
    await press("Email me a link instead");
    expect(container.querySelector("h1")?.textContent).toBe("Email me a sign-in link");
    await type("Email", "harbourview");
    await press("Email me a link");
    expect(alerts()).toEqual(["Enter an email address, like name@example.com."]);
    await press("Forgot password?");
    expect(alerts()).toEqual([]);
  });
});

describe("reset password form", () => {
  it("says a link without a token is incomplete", async () => {
    await show("/reset-password", "/reset-password", <ResetPasswordScreen />);
    expect(alerts()).toEqual(["This link is incomplete. Open it again from your email."]);
  });

  it("wants a long enough password, typed twice alike", async () => {
    await show("/reset-password?token=abc", "/reset-password", <ResetPasswordScreen />);
    await type("New password", "short");
    await press("Save the new password");
    expect(alerts()).toEqual(["Choose a password of at least 8 characters."]);
    await type("New password", "long enough now");
    await type("Repeat the new password", "long enough not");
    await press("Save the new password");
    expect(alerts()).toEqual(["The two passwords differ."]);
  });
});

describe("accept invitation form", () => {
  it("asks for a name and a username first", async () => {
    await show("/acme/accept-invitation?token=abc", "/:slug/accept-invitation", <AcceptInvitationScreen />);
    await press("Create my account");
    expect(alerts()).toEqual(["Enter your name."]);
    await type("Your name", "Nia");
    await press("Create my account");
    expect(alerts()).toEqual(["Choose a username."]);
  });
});

describe("checks", () => {
  const balance = { minor: 22500, currency: "GBP" };
  it("bounds a part payment by the minimum and the balance", () => {
    expect(amountProblem("abc", balance, { minor: 30, currency: "GBP" })).toBe("Enter an amount such as 25.00.");
    expect(amountProblem("225.01", balance, null)).toBe("Pay at most the balance, £225.00.");
    expect(amountProblem("0.10", balance, { minor: 30, currency: "GBP" })).toBe("Pay at least £0.30.");
    expect(amountProblem("10", balance, { minor: 30, currency: "GBP" })).toBeUndefined();
  });

  it("reads amounts in the currency's minor unit", () => {
    expect(minorUnits("10", "GBP")).toBe(1000);
    expect(minorUnits("10.5", "GBP")).toBe(1050);
    expect(minorUnits("10,05", "EUR")).toBe(1005);
    expect(minorUnits("10.005", "GBP")).toBeNull();
    expect(minorUnits("1000", "JPY")).toBe(1000);
    expect(money({ minor: 123450, currency: "GBP" })).toBe("£1,234.50");
  });

  it("shows a calendar date as the same day everywhere", () => {
    expect(day("2026-12-01")).toBe("1 Dec 2026");
  });

  it("asks for what each kind of request needs", () => {
    const form = { siteId: "", productId: "", serviceId: "", rental: "", description: "" };
    expect(requestProblem("SERVICE", form)).toBe("Choose the site.");
    expect(requestProblem("SERVICE", { ...form, siteId: "s" })).toBe("Choose a product or a service.");
    expect(requestProblem("SERVICE", { ...form, siteId: "s", serviceId: "v" })).toBe(
      "Pick the rental this is for, or ask for a new one.",
    );
    expect(requestProblem("QUOTE", { ...form, siteId: "s" })).toBe("Describe what you need.");
    expect(requestProblem("JOB", { ...form, siteId: "s", description: "Fix" })).toBeUndefined();
  });

  it("sends a message only with some text and within the server's limit", () => {
    expect(messageProblem(" \n ")).toBe("Write a message first.");
    expect(messageProblem(` ${"😀".repeat(MAX_MESSAGE)} `)).toBeUndefined();
    expect(messageProblem("x".repeat(MAX_MESSAGE + 1))).toBe("A message can be up to 4000 characters; this one has 4001.");
    expect(messageProblem("Line one\nLine two")).toBeUndefined();
    expect(messageProblem("x".repeat(MAX_MESSAGE))).toBeUndefined();
  });

  it("keeps the accent colour readable", () => {
    applyAccent("#FDE68A");
    const style = document.documentElement.style;
    expect(style.getPropertyValue("--on-accent")).toBe("#111111");
    expect(contrast(style.getPropertyValue("--accent-text"), "#ffffff")).toBeGreaterThanOrEqual(4.5);
    applyAccent("#0F766E");
    expect(style.getPropertyValue("--on-accent")).toBe("#ffffff");
    expect(style.getPropertyValue("--accent-text")).toBe("#0F766E");
    expect(passwordProblem("12345678", "12345678")).toBeUndefined();
  });
});
