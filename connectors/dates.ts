/** Dates as vendors write them → ISO `YYYY-MM-DD`: US `M/D/YYYY` (Clever, SDS v1), ISO dates and timestamps. */
export function isoDate(v: string | undefined | null): string | undefined {
  if (v === undefined || v === null || v.trim() === '') return undefined;
  const t = v.trim();
  const us = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(t);
  if (us) return `${us[3]}-${us[1]!.padStart(2, '0')}-${us[2]!.padStart(2, '0')}`;
  return /^(\d{4}-\d{2}-\d{2})/.exec(t)?.[1];
}
