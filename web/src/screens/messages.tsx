// Conversations with the contractor: the list with unread counts, one conversation with its
// messages live, and the box to write in.
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import type { FormEvent, ReactNode } from "react";
import { Link, Navigate, useLocation, useParams } from "react-router-dom";
import { ApiError, run } from "../api";
import { moment, words } from "../format";
import type { MessageThreadQuery } from "../generated/graphql";
import {
  MarkMessageThreadRead,
  MessageAdded,
  MessageThread as MessageThreadOperation,
  MessageThreads as MessageThreadsOperation,
  SendMessage,
} from "../generated/operations";
import { PAGE, Paged } from "../lists";
import { subscribe } from "../live";
import { Field, FormError, Loading, Page, Problem } from "../ui";

// The server's limit on a message's length.
export const MAX_MESSAGE = 4000;

type Thread = NonNullable<MessageThreadQuery["messageThread"]>;
type Message = Thread["messages"]["edges"][number]["node"];

interface Unread {
  count: number;
  recount: () => void;
}

const UnreadContext = createContext<Unread>({ count: 0, recount: () => {} });

// The menu's unread badge: counted on each screen change and after each new message.
export function UnreadProvider({ children }: { children: ReactNode }) {
  const [count, setCount] = useState(0);
  const location = useLocation();
  const recount = useCallback(() => {
    run(MessageThreadsOperation, { first: 1 }).then(
      (data) => setCount(data.unreadMessageCount),
      () => {},
    );
  }, []);
  useEffect(recount, [recount, location.pathname]);
  useEffect(() => subscribe(MessageAdded, {}, recount), [recount]);
  const value = useMemo(() => ({ count, recount }), [count, recount]);
  return <UnreadContext.Provider value={value}>{children}</UnreadContext.Provider>;
}

export function UnreadBadge() {
  const { count } = useContext(UnreadContext);
  if (count === 0) return null;
  return (
    <span className="badge">
      {count}
      <span className="sr-only"> unread</span>
    </span>
  );
}

export function Messages() {
  return (
    <Page title="Messages">
      <Paged operation={MessageThreadsOperation} variables={{}} pick={(d) => d.messageThreads} empty="No conversations yet. Write to us from a job, quote, invoice or request.">
        {(threads) => (
          <ul className="rows">
            {threads.map((thread) => (
              <li key={thread.id}>
                <Link to={`/messages/${encodeURIComponent(thread.id)}`}>{thread.title}</Link>
                {thread.unreadCount > 0 ? <span className="status">{thread.unreadCount} unread</span> : null}
                <span className="muted">
                  {words(thread.subjectType)} · {thread.contractor.name}
                  {thread.lastMessageAt ? ` · last message ${moment(thread.lastMessageAt, thread.contractor)}` : ""}
                </span>
              </li>
            ))}
          </ul>
        )}
      </Paged>
    </Page>
  );
}

// The address an emailed notice links to, /{business slug}/messages/{thread id}: the id as
// written there, which may hold a slash.
export function NoticeLink() {
  const { "*": id = "" } = useParams();
  return <Navigate to={`/messages/${encodeURIComponent(id)}`} replace />;
}

function byTime(messages: Message[]): Message[] {
  const seen = new Map(messages.map((m) => [m.id, m]));
  return [...seen.values()].sort((a, b) => a.sentAt.localeCompare(b.sentAt));
}

export function MessageThread() {
  const { id = "" } = useParams();
  const { recount } = useContext(UnreadContext);
  const [thread, setThread] = useState<Thread | null>();
  const [messages, setMessages] = useState<Message[]>([]);
  const [earlier, setEarlier] = useState<string | null>(null);
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);

  const markRead = useCallback(() => {
    run(MarkMessageThreadRead, { id }).then(recount, () => {});
  }, [id, recount]);

  useEffect(() => {
    let current = true;
    setThread(undefined);
    run(MessageThreadOperation, { about: id, first: PAGE }).then(
      ({ messageThread }) => {
        if (!current) return;
        setThread(messageThread);
        if (!messageThread) return;
        setMessages(byTime(messageThread.messages.edges.map((e) => e.node)));
        const info = messageThread.messages.pageInfo;
        setEarlier(info.hasNextPage ? info.endCursor : null);
        if (messageThread.unreadCount > 0) markRead();
      },
      (failure: ApiError) => current && setError(failure),
    );
    return () => {
      current = false;
    };
  }, [id, markRead]);

  const threadId = thread?.id;
  useEffect(() => {
    if (!threadId) return;
    return subscribe(MessageAdded, {}, ({ messageAdded }) => {
      if (messageAdded.thread.id !== threadId) return;
      setMessages((shown) => byTime([...shown, messageAdded]));
      if (messageAdded.fromContractor) markRead();
    });
  }, [threadId, markRead]);

  async function loadEarlier() {
    setBusy(true);
    try {
      const { messageThread } = await run(MessageThreadOperation, { about: id, first: PAGE, after: earlier });
      if (messageThread) {
        setMessages((shown) => byTime([...shown, ...messageThread.messages.edges.map((e) => e.node)]));
        const info = messageThread.messages.pageInfo;
        setEarlier(info.hasNextPage ? info.endCursor : null);
      }
    } catch (failure) {
      setError(failure as ApiError);
    } finally {
      setBusy(false);
    }
  }

  if (error && thread === undefined) return <Page title="Conversation"><Problem error={error} /></Page>;
  if (thread === undefined) return <Page title="Conversation"><Loading /></Page>;
  if (thread === null) return <Page title="Conversation"><Problem error={new ApiError("NOT_FOUND", "No such conversation.")} /></Page>;
  return (
    <Page title={thread.title}>
      <p className="muted">
        With {thread.contractor.name} · <Link to="/messages">All messages</Link>
      </p>
      {earlier ? (
        <p>
          <button type="button" onClick={() => void loadEarlier()} disabled={busy}>
            Load earlier messages
          </button>
        </p>
      ) : null}
      <ol className="rows messages" aria-label="Messages" aria-live="polite">
        {messages.map((message) => (
          <li key={message.id} className={message.fromYou ? "mine" : undefined}>
            <span className="muted">
              {message.fromYou ? "You" : message.authorName} · {moment(message.sentAt, thread.contractor)}
            </span>
            <span className="body">{message.body}</span>
          </li>
        ))}
      </ol>
      {error ? <Problem error={error} /> : null}
      <SendBox about={thread.id} onSent={(message) => setMessages((shown) => byTime([...shown, message]))} />
    </Page>
  );
}

export function messageProblem(body: string): string | undefined {
  // Counted as the server counts: characters, once trimmed.
  const length = [...body.trim()].length;
  if (length === 0) return "Write a message first.";
  if (length > MAX_MESSAGE) return `A message can be up to ${MAX_MESSAGE} characters; this one has ${length}.`;
  return undefined;
}

function SendBox({ about, onSent }: { about: string; onSent: (message: Message) => void }) {
  const [body, setBody] = useState("");
  const [invalid, setInvalid] = useState<string>();
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);

  async function send(event: FormEvent) {
    event.preventDefault();
    const problem = messageProblem(body);
    setInvalid(problem);
    setError(undefined);
    if (problem) return;
    setBusy(true);
    try {
      const { sendMessage } = await run(SendMessage, { about, body });
      onSent(sendMessage);
      setBody("");
    } catch (failure) {
      setError(failure as ApiError);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={(event) => void send(event)} noValidate>
      <Field label="Your message" hint={`Plain text, up to ${MAX_MESSAGE} characters.`}>
        {(fieldId) => <textarea id={fieldId} rows={4} value={body} onChange={(event) => setBody(event.target.value)} />}
      </Field>
      {invalid ? (
        <p role="alert" className="form-error">
          {invalid}
        </p>
      ) : null}
      <FormError error={error} />
      <button type="submit" className="primary" disabled={busy}>
        Send
      </button>
    </form>
  );
}
