"""One module per IMAP command group; `HANDLERS` maps each verb to the states allowing it and
its handler."""

from __future__ import annotations

from mailmark.imap.handlers import auth, idle, mailboxes, quota, selected
from mailmark.imap.session import Handler, SessionState

ANY = frozenset(SessionState) - {SessionState.LOGOUT}
UNAUTHENTICATED = frozenset({SessionState.NOT_AUTHENTICATED})
AUTHENTICATED_OR_SELECTED = frozenset({SessionState.AUTHENTICATED, SessionState.SELECTED})
ONLY_SELECTED = frozenset({SessionState.SELECTED})

HANDLERS: dict[str, tuple[frozenset[SessionState], Handler]] = {
    "CAPABILITY": (ANY, auth.do_capability),
    "NOOP": (ANY, auth.do_noop),
    "LOGOUT": (ANY, auth.do_logout),
    "ID": (ANY, auth.do_id),
    "STARTTLS": (UNAUTHENTICATED, auth.do_starttls),
    "LOGIN": (UNAUTHENTICATED, auth.do_login),
    "AUTHENTICATE": (UNAUTHENTICATED, auth.do_authenticate),
    "ENABLE": (AUTHENTICATED_OR_SELECTED, auth.do_enable),
    "COMPRESS": (AUTHENTICATED_OR_SELECTED, auth.do_compress),
    "NAMESPACE": (AUTHENTICATED_OR_SELECTED, auth.do_namespace),
    "SELECT": (AUTHENTICATED_OR_SELECTED, mailboxes.do_select),
    "EXAMINE": (AUTHENTICATED_OR_SELECTED, mailboxes.do_select),
    "CREATE": (AUTHENTICATED_OR_SELECTED, mailboxes.do_create),
    "DELETE": (AUTHENTICATED_OR_SELECTED, mailboxes.do_delete),
    "RENAME": (AUTHENTICATED_OR_SELECTED, mailboxes.do_rename),
    "SUBSCRIBE": (AUTHENTICATED_OR_SELECTED, mailboxes.do_subscribe),
    "UNSUBSCRIBE": (AUTHENTICATED_OR_SELECTED, mailboxes.do_subscribe),
    "LIST": (AUTHENTICATED_OR_SELECTED, mailboxes.do_list),
    "LSUB": (AUTHENTICATED_OR_SELECTED, mailboxes.do_list),
    "STATUS": (AUTHENTICATED_OR_SELECTED, mailboxes.do_status),
    "APPEND": (AUTHENTICATED_OR_SELECTED, mailboxes.do_append),
    "GETQUOTAROOT": (AUTHENTICATED_OR_SELECTED, quota.do_getquotaroot),
    "GETQUOTA": (AUTHENTICATED_OR_SELECTED, quota.do_getquota),
    "SETQUOTA": (AUTHENTICATED_OR_SELECTED, quota.do_setquota),
    "IDLE": (AUTHENTICATED_OR_SELECTED, idle.do_idle),
    "CHECK": (ONLY_SELECTED, selected.do_check),
    "CLOSE": (ONLY_SELECTED, selected.do_close),
    "UNSELECT": (ONLY_SELECTED, selected.do_close),
    "EXPUNGE": (ONLY_SELECTED, selected.do_expunge),
    "SEARCH": (ONLY_SELECTED, selected.do_search),
    "SORT": (ONLY_SELECTED, selected.do_sort),
    "THREAD": (ONLY_SELECTED, selected.do_thread),
    "FETCH": (ONLY_SELECTED, selected.do_fetch),
    "STORE": (ONLY_SELECTED, selected.do_store),
    "COPY": (ONLY_SELECTED, selected.do_copy),
    "MOVE": (ONLY_SELECTED, selected.do_copy),
}
