import type { Folder } from "../../api/mail";
import { ROLE_LABEL } from "./icons";

/** A folder's name as shown: the role's word for special folders, else the last path segment. */
export function folderLabel(folder: Folder, fullPath = false): string {
  if (folder.role && ROLE_LABEL[folder.role]) return ROLE_LABEL[folder.role]!;
  return fullPath ? folder.name : (folder.name.split("/").pop() ?? folder.name);
}

export function folderDepth(folder: Folder): number {
  return folder.role ? 0 : folder.name.split("/").length - 1;
}
