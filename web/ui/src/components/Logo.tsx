export function Logo({ className = "" }: { className?: string }) {
  return (
    <span className={`inline-flex items-center gap-2 font-semibold tracking-tight text-zinc-900 dark:text-white ${className}`}>
      <svg viewBox="0 0 32 32" className="size-7" aria-hidden="true">
        <rect width="32" height="32" rx="7" className="fill-indigo-600 dark:fill-indigo-500" />
        <path d="M7 10.5A1.5 1.5 0 0 1 8.5 9h15a1.5 1.5 0 0 1 1.5 1.5v11a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 7 21.5z" fill="none" stroke="#fff" strokeWidth="2" />
        <path d="m8 10 8 6.5 8-6.5" fill="none" stroke="#fff" strokeWidth="2" strokeLinejoin="round" />
      </svg>
      <span className="text-lg">Mailmark</span>
    </span>
  );
}
