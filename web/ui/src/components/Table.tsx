import type { ReactNode } from "react";

export type Column<T> = {
  /** Column heading; also the label of the value on a card (narrow screens). */
  header: string;
  cell: (row: T) => ReactNode;
  /** Hide the heading visually (an actions column) while keeping it for screen readers. */
  srOnlyHeader?: boolean;
  className?: string;
  /** Leave this column out of the narrow-screen card (shown elsewhere, e.g. as its title). */
  hideOnCard?: boolean;
};

type TableProps<T> = {
  columns: Column<T>[];
  rows: T[];
  rowKey: (row: T) => string;
  /** Accessible name of the table ("Team members"). */
  label: string;
  /** The card's title on narrow screens (the row's name). */
  cardTitle?: (row: T) => ReactNode;
};

/** A table on wide screens; one card per row below the `sm` breakpoint (360 px phones). */
export function Table<T>({ columns, rows, rowKey, label, cardTitle }: TableProps<T>) {
  return (
    <>
      <div className="hidden overflow-x-auto rounded-xl bg-white shadow-sm ring-1 ring-zinc-200 sm:block dark:bg-zinc-900 dark:ring-zinc-800">
        <table className="min-w-full divide-y divide-zinc-200 text-sm dark:divide-zinc-800" aria-label={label}>
          <thead className="bg-zinc-50 dark:bg-zinc-900/60">
            <tr>
              {columns.map((column) => (
                <th
                  key={column.header}
                  scope="col"
                  className={`px-4 py-2.5 text-left text-xs font-semibold tracking-wide text-zinc-600 uppercase dark:text-zinc-400 ${column.className ?? ""}`}
                >
                  {column.srOnlyHeader ? <span className="sr-only">{column.header}</span> : column.header}
                </th>
              ))}
            </tr>
          </thead>
          <tbody className="divide-y divide-zinc-100 dark:divide-zinc-800">
            {rows.map((row) => (
              <tr key={rowKey(row)} className="hover:bg-zinc-50/70 dark:hover:bg-zinc-800/40">
                {columns.map((column) => (
                  <td key={column.header} className={`px-4 py-3 align-middle text-zinc-800 dark:text-zinc-200 ${column.className ?? ""}`}>
                    {column.cell(row)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <ul className="space-y-3 sm:hidden" aria-label={label}>
        {rows.map((row) => (
          <li
            key={rowKey(row)}
            className="rounded-xl bg-white p-4 shadow-sm ring-1 ring-zinc-200 dark:bg-zinc-900 dark:ring-zinc-800"
          >
            {cardTitle ? <div className="mb-2 font-medium text-zinc-900 dark:text-white">{cardTitle(row)}</div> : null}
            <dl className="space-y-2 text-sm">
              {columns
                .filter((column) => !column.hideOnCard)
                .map((column) => (
                  <div key={column.header} className="flex flex-wrap items-center justify-between gap-x-3 gap-y-1">
                    {column.srOnlyHeader ? (
                      <dt className="sr-only">{column.header}</dt>
                    ) : (
                      <dt className="text-zinc-600 dark:text-zinc-400">{column.header}</dt>
                    )}
                    <dd className="min-w-0 text-zinc-900 dark:text-zinc-100">{column.cell(row)}</dd>
                  </div>
                ))}
            </dl>
          </li>
        ))}
      </ul>
    </>
  );
}
