import type { ApiError } from "../../api/client";
import { Alert } from "../../components/Alert";
import { Button } from "../../components/Button";

/** Whether trying the same request again may help: the network or the server failed, not the request. */
export function retryable(error: ApiError): boolean {
  return error.status === 0 || error.status >= 500;
}

/** A page's data could not be read: the server's sentence, and "Try again" when that may help. */
export function LoadError({ error, reload }: { error: ApiError; reload: () => unknown }) {
  return (
    <Alert
      tone="error"
      action={
        retryable(error) ? (
          <Button variant="secondary" size="sm" onClick={() => void reload()}>
            Try again
          </Button>
        ) : undefined
      }
    >
      {error.message}
    </Alert>
  );
}
