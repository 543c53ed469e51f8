import { useSignedIn } from "./session";
import { Field } from "./ui";

// The contractor filter every list takes; shown only to users of more than one contractor.
export function ContractorFilter({ value, onChange }: { value: string | null; onChange: (id: string | null) => void }) {
  const session = useSignedIn();
  const contractors = new Map(session.customers.map((c) => [c.contractor.id, c.contractor.name]));
  if (contractors.size < 2) return null;
  return (
    <Field label="Contractor">
      {(id) => (
        <select id={id} value={value ?? ""} onChange={(e) => onChange(e.target.value || null)}>
          <option value="">All contractors</option>
          {[...contractors].map(([contractor, name]) => (
            <option key={contractor} value={contractor}>
              {name}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}
