export const sample = "served";
