// Paying an invoice by card: Stripe's Payment Element, or in development and tests the
// clearly marked stand-in for Stripe that the service names in the page (never in production).
import { useEffect, useRef, useState } from "react";
import type { FormEvent } from "react";
import { ApiError, run } from "../api";
import { minorUnits, money } from "../format";
import type { Money } from "../format";
import { Invoice as InvoiceOperation, StartInvoicePayment } from "../generated/operations";
import type { StartInvoicePaymentMutation } from "../generated/graphql";
import { Field, FormError } from "../ui";

type Payment = StartInvoicePaymentMutation["startInvoicePayment"];

export function standInUrl(): string | null {
  return document.querySelector<HTMLMetaElement>('meta[name="portal-stripe-standin"]')?.content || null;
}

export function amountProblem(text: string, balance: Money, minimum: Money | null): string | undefined {
  const minor = minorUnits(text, balance.currency);
  if (minor === null) return "Enter an amount such as 25.00.";
  if (minor > balance.minor) return `Pay at most the balance, ${money(balance)}.`;
  if (minimum && minor < minimum.minor) return `Pay at least ${money(minimum)}.`;
  return undefined;
}

const PAY_ERRORS: Record<string, string> = {
  AMOUNT_OUT_OF_RANGE: "That amount cannot be paid: it is more than the balance or less than the smallest card payment.",
  INVOICE_NOT_PAYABLE: "This invoice cannot be paid now.",
  PAYMENT_SUPERSEDED: "Another payment started at the same moment. Press pay again.",
  PAYMENT_PROVIDER_ERROR: "The card payment service did not answer. Try again in a moment.",
};

export function PayInvoice({
  invoice,
  onPaid,
}: {
  invoice: { id: string; balance: Money; minimumPayment: Money | null };
  onPaid: () => void;
}) {
  const [whole, setWhole] = useState(true);
  const [amount, setAmount] = useState("");
  const [invalid, setInvalid] = useState<string>();
  const [error, setError] = useState<ApiError>();
  const [payment, setPayment] = useState<Payment>();
  const [waiting, setWaiting] = useState(false);
  const [busy, setBusy] = useState(false);

  async function start(event: FormEvent) {
    event.preventDefault();
    const problem = whole ? undefined : amountProblem(amount, invoice.balance, invoice.minimumPayment);
    setInvalid(problem);
    if (problem) return;
    setBusy(true);
    setError(undefined);
    try {
      const minor = whole ? null : minorUnits(amount, invoice.balance.currency);
      const answer = await run(StartInvoicePayment, { invoiceId: invoice.id, amount: minor });
      setPayment(answer.startInvoicePayment);
    } catch (failure) {
      const known = failure as ApiError;
      setError(new ApiError(known.code, PAY_ERRORS[known.code] ?? known.message));
    } finally {
      setBusy(false);
    }
  }

  async function paid() {
    setWaiting(true);
    // The invoice changes when Stripe's webhook lands: ask again until its balance moves.
    const before = invoice.balance.minor;
    for (let attempt = 0; attempt < 40; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 750));
      const data = await run(InvoiceOperation, { id: invoice.id }).catch(() => null);
      const node = data?.node as { balance?: Money } | null | undefined;
      if (node?.balance && node.balance.minor !== before) break;
    }
    setWaiting(false);
    setPayment(undefined);
    onPaid();
  }

  if (waiting) {
    return (
      <p role="status" className="notice">
        Payment accepted. Waiting for it to reach your invoice…
      </p>
    );
  }
  if (payment) {
    return standInUrl() ? (
      <StandInCheckout payment={payment} url={standInUrl()!} onPaid={paid} onCancel={() => setPayment(undefined)} />
    ) : (
      <StripeCheckout payment={payment} onPaid={paid} onCancel={() => setPayment(undefined)} />
    );
  }
  return (
    <form onSubmit={start} className="pay" noValidate>
      <h2>Pay this invoice</h2>
      <fieldset>
        <legend>How much?</legend>
        <div className="check">
          <input id="pay-whole" type="radio" name="how-much" checked={whole} onChange={() => setWhole(true)} />
          <label htmlFor="pay-whole">The whole balance, {money(invoice.balance)}</label>
        </div>
        <div className="check">
          <input id="pay-part" type="radio" name="how-much" checked={!whole} onChange={() => setWhole(false)} />
          <label htmlFor="pay-part">Part of it</label>
        </div>
      </fieldset>
      {!whole ? (
        <Field label={`Amount (${invoice.balance.currency})`} hint={invoice.minimumPayment ? `From ${money(invoice.minimumPayment)} to ${money(invoice.balance)}.` : undefined}>
          {(id) => <input id={id} inputMode="decimal" value={amount} onChange={(e) => setAmount(e.target.value)} aria-invalid={invalid ? true : undefined} />}
        </Field>
      ) : null}
      {invalid ? <p role="alert" className="form-error">{invalid}</p> : null}
      <FormError error={error} />
      <button type="submit" className="primary" disabled={busy}>
        Continue to card payment
      </button>
    </form>
  );
}

// What both checkouts end with: the card's error, the pay button and a way back.
function CheckoutEnd({ amount, error, disabled, onCancel }: { amount: Money; error?: string; disabled: boolean; onCancel: () => void }) {
  return (
    <>
      {error ? (
        <p role="alert" className="form-error">
          {error}
        </p>
      ) : null}
      <div className="actions">
        <button type="submit" className="primary" disabled={disabled}>
          Pay {money(amount)}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </>
  );
}

function StandInCheckout({ payment, url, onPaid, onCancel }: { payment: Payment; url: string; onPaid: () => void; onCancel: () => void }) {
  const [card, setCard] = useState("4242 4242 4242 4242");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  async function confirm(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    const intent = payment.clientSecret.split("_secret_")[0];
    try {
      const response = await fetch(`${url}/v1/payment_intents/${encodeURIComponent(intent)}/confirm`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ key: payment.publishableKey, client_secret: payment.clientSecret, card: card.replace(/\s/g, "") }),
      });
      const body = (await response.json()) as { status?: string; error?: { message: string } };
      if (!response.ok || body.status !== "succeeded") throw new Error(body.error?.message ?? "The card was declined.");
      onPaid();
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
      setBusy(false);
    }
  }
  return (
    <form onSubmit={confirm} className="pay standin" noValidate>
      <h2>Pay {money(payment.amount)}</h2>
      <p className="test-mode" role="note">
        <strong>TEST MODE.</strong> This is the development stand-in for Stripe: no card is charged and no payment leaves this machine.
      </p>
      <Field label="Test card number">{(id) => <input id={id} inputMode="numeric" autoComplete="off" value={card} onChange={(e) => setCard(e.target.value)} />}</Field>
      <CheckoutEnd amount={payment.amount} error={error} disabled={busy} onCancel={onCancel} />
    </form>
  );
}

function StripeCheckout({ payment, onPaid, onCancel }: { payment: Payment; onPaid: () => void; onCancel: () => void }) {
  const mount = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string>();
  const [ready, setReady] = useState(false);
  const confirmRef = useRef<() => Promise<void>>();
  useEffect(() => {
    let cancelled = false;
    void (async () => {
      try {
        const { loadStripe } = await import("@stripe/stripe-js");
        const stripe = await loadStripe(payment.publishableKey, { stripeAccount: payment.stripeAccount });
        if (!stripe || cancelled || !mount.current) return;
        const elements = stripe.elements({ clientSecret: payment.clientSecret });
        elements.create("payment").mount(mount.current);
        confirmRef.current = async () => {
          const result = await stripe.confirmPayment({ elements, redirect: "if_required" });
          if (result.error) throw new Error(result.error.message ?? "The card was declined.");
        };
        setReady(true);
      } catch (failure) {
        setError(failure instanceof Error ? failure.message : "Card payments could not be loaded.");
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [payment]);
  async function confirm(event: FormEvent) {
    event.preventDefault();
    try {
      await confirmRef.current?.();
      onPaid();
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    }
  }
  return (
    <form onSubmit={confirm} className="pay" noValidate>
      <h2>Pay {money(payment.amount)}</h2>
      <div ref={mount} />
      <CheckoutEnd amount={payment.amount} error={error} disabled={!ready} onCancel={onCancel} />
    </form>
  );
}
