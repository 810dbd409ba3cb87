import type { ApiError } from "../api/client";
import { Button } from "./Button";
import { Logo } from "./Logo";
import { Spinner } from "./Spinner";

export function FullPageSpinner() {
  return (
    <div className="flex min-h-dvh items-center justify-center text-zinc-500 dark:text-zinc-400">
      <Spinner className="size-6" label="Loading" />
    </div>
  );
}

/** The server could not be reached at all: say so and offer to try again. */
export function FullPageError({ error, onRetry }: { error: ApiError; onRetry: () => unknown }) {
  return (
    <main className="flex min-h-dvh flex-col items-center justify-center gap-4 p-6 text-center">
      <Logo />
      <h1 className="text-xl font-semibold">Mailmark is not answering</h1>
      <p className="max-w-sm text-sm text-zinc-600 dark:text-zinc-400">{error.message}</p>
      <Button onClick={() => void onRetry()}>Try again</Button>
    </main>
  );
}
