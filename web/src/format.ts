// Money in minor units, dates as the business keeps them, times in its time zone.
export interface Money {
  minor: number;
  currency: string;
}

export function money(amount: Money | null | undefined): string {
  if (!amount) return "";
  const format = new Intl.NumberFormat("en-GB", { style: "currency", currency: amount.currency });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(amount.minor / 10 ** digits);
}

export function minorUnits(text: string, currency: string): number | null {
  const digits =
    new Intl.NumberFormat("en-GB", { style: "currency", currency }).resolvedOptions()
      .maximumFractionDigits ?? 2;
  if (!/^\d+([.,]\d+)?$/.test(text.trim())) return null;
  const [whole, fraction = ""] = text.trim().replace(",", ".").split(".");
  if (fraction.length > digits) return null;
  return Number(whole) * 10 ** digits + Number(fraction.padEnd(digits, "0") || "0");
}

// A calendar date (YYYY-MM-DD) is the same day everywhere: shown without any time zone.
export function day(value: string | null | undefined): string {
  if (!value) return "";
  const [year, month, date] = value.split("-").map(Number);
  return new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeZone: "UTC" }).format(
    new Date(Date.UTC(year, month - 1, date)),
  );
}

// Each contractor's time zone; a time shows in the zone of the business it is with.
const zones = new Map<string, string>();
let firstZone: string | undefined;
export function setTimeZones(contractors: { id: string; timeZone: string }[]): void {
  zones.clear();
  contractors.forEach((c) => zones.set(c.id, c.timeZone));
  firstZone = contractors[0]?.timeZone;
}

export function moment(value: string | null | undefined, contractor?: { id: string }): string {
  if (!value) return "";
  const timeZone = (contractor && zones.get(contractor.id)) || firstZone;
  return new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone }).format(
    new Date(value),
  );
}

export function words(value: string): string {
  const text = value.replace(/_/g, " ").toLowerCase();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// The accent colour as the page uses it: text on it in white or near-black, whichever
// contrasts more, and links in it only where it reads on white (WCAG 4.5:1).
function luminance(hex: string): number {
  const channels = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  const [r, g, b] = channels.map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}

export function applyAccent(accent: string | null | undefined): void {
  const root = document.documentElement.style;
  const colour = accent && /^#[0-9a-fA-F]{6}$/.test(accent) ? accent : "#1d4ed8";
  const onAccent = contrast(colour, "#ffffff") >= contrast(colour, "#111111") ? "#ffffff" : "#111111";
  root.setProperty("--accent", colour);
  root.setProperty("--on-accent", onAccent);
  root.setProperty("--accent-text", contrast(colour, "#ffffff") >= 4.5 ? colour : "#1e3a8a");
}
