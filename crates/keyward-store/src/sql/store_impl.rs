//! `sql_store!`: the trait implementations shared by both backends.
//!
//! Instantiated as `sql_store!(SqliteStore, SqliteRow, "json_group_array(..)")` and
//! `sql_store!(PgStore, PgRow, "json_agg(..)")`; the store type must have a `pool` field.
//! Everything inside is ordinary sqlx code over that pool. The third argument is the one piece
//! of SQL the backends spell differently: the aggregate that turns a workspace's catalogue
//! rows (`permission`, `description`) into one JSON array of `[permission, description]`
//! pairs, for `load_verification`'s single statement (see `verify_sql`).

macro_rules! sql_store {
    ($store:ident, $row:ty, $catalogue_json:expr) => {
        mod shared_sql {
        use super::$store;
        use async_trait::async_trait;
        use keyward_core::audit::AuditDraft;
        use keyward_core::model::ShownStatus;
        use keyward_core::{
            CatalogueEntry, Permission, Role, RoleId, Token, TokenHash, TokenId, User, UserId,
            Workspace, WorkspaceId,
        };
        use sqlx::Row as _;

        use $crate::sql::{self, Arg, Filter};
        use $crate::traits::*;
        use $crate::{PageRequest, Result, StoreError};

        const WS_COLS: &str = "id, name, operator, settings, created_at, updated_at";
        pub(super) const USER_COLS: &str =
            "id, workspace_id, kind, name, email, role_id, disabled, created_at, updated_at";
        const ROLE_COLS: &str = "id, workspace_id, name, description, kind, scope, permissions, \
                                 ip_allowlist, rate_limit, rate_limit_per, created_at, \
                                 updated_at";
        const TOKEN_COLS: &str = "id, workspace_id, owner_id, role_id, permissions, name, \
                                  metadata, status, hash, start, not_before, expires_at, \
                                  ip_allowlist, internal_only, rate_limit, rate_limit_per, \
                                  created_at, updated_at, revoked_at, family_id, rotated_from, \
                                  created_by, request_log";

        fn workspace_row(r: &$row) -> Result<Workspace> {
            Ok(Workspace {
                id: WorkspaceId::from_uuid(sql::uuid(r.try_get("id")?)?),
                name: r.try_get("name")?,
                operator: r.try_get("operator")?,
                settings: sql::parse_json("settings", r.try_get("settings")?)?,
                created_at: sql::time(r.try_get("created_at")?)?,
                updated_at: sql::time(r.try_get("updated_at")?)?,
            })
        }

        pub(super) fn user_row(r: &$row) -> Result<User> {
            Ok(User {
                id: UserId::from_uuid(sql::uuid(r.try_get("id")?)?),
                workspace_id: WorkspaceId::from_uuid(sql::uuid(r.try_get("workspace_id")?)?),
                kind: sql::parse_user_kind(r.try_get("kind")?)?,
                name: r.try_get("name")?,
                email: r.try_get("email")?,
                role_id: sql::opt_uuid(r.try_get("role_id")?)?.map(RoleId::from_uuid),
                disabled: r.try_get("disabled")?,
                created_at: sql::time(r.try_get("created_at")?)?,
                updated_at: sql::time(r.try_get("updated_at")?)?,
            })
        }

        fn role_row(r: &$row) -> Result<Role> {
            Ok(Role {
                id: RoleId::from_uuid(sql::uuid(r.try_get("id")?)?),
                workspace_id: WorkspaceId::from_uuid(sql::uuid(r.try_get("workspace_id")?)?),
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                kind: sql::parse_role_kind(r.try_get("kind")?)?,
                scope: sql::parse_scope(r.try_get("scope")?)?,
                permissions: sql::parse_patterns(r.try_get("permissions")?)?,
                ip_allowlist: sql::parse_json("ip_allowlist", r.try_get("ip_allowlist")?)?,
                rate_limit_per_minute: sql::opt_limit(r.try_get("rate_limit")?)?,
                rate_limit_per: sql::parse_rate_limit_per(r.try_get("rate_limit_per")?)?,
                created_at: sql::time(r.try_get("created_at")?)?,
                updated_at: sql::time(r.try_get("updated_at")?)?,
            })
        }

        fn token_row(r: &$row) -> Result<Token> {
            let hash: &str = r.try_get("hash")?;
            let permissions: Option<&str> = r.try_get("permissions")?;
            Ok(Token {
                id: TokenId::from_uuid(sql::uuid(r.try_get("id")?)?),
                workspace_id: WorkspaceId::from_uuid(sql::uuid(r.try_get("workspace_id")?)?),
                owner_id: UserId::from_uuid(sql::uuid(r.try_get("owner_id")?)?),
                role_id: sql::opt_uuid(r.try_get("role_id")?)?.map(RoleId::from_uuid),
                permissions: permissions.map(sql::parse_patterns).transpose()?,
                name: r.try_get("name")?,
                metadata: sql::parse_json("metadata", r.try_get("metadata")?)?,
                status: sql::parse_status(r.try_get("status")?)?,
                hash: TokenHash::from_hex(hash)
                    .ok_or_else(|| StoreError::Internal("corrupt token hash".into()))?,
                start: r.try_get("start")?,
                not_before: sql::opt_time(r.try_get("not_before")?)?,
                expires_at: sql::opt_time(r.try_get("expires_at")?)?,
                ip_allowlist: sql::parse_json("ip_allowlist", r.try_get("ip_allowlist")?)?,
                internal_only: r.try_get("internal_only")?,
                request_log: r.try_get("request_log")?,
                rate_limit_per_minute: sql::opt_limit(r.try_get("rate_limit")?)?,
                rate_limit_per: sql::parse_rate_limit_per(r.try_get("rate_limit_per")?)?,
                created_at: sql::time(r.try_get("created_at")?)?,
                updated_at: sql::time(r.try_get("updated_at")?)?,
                revoked_at: sql::opt_time(r.try_get("revoked_at")?)?,
                family_id: sql::opt_uuid(r.try_get("family_id")?)?.map(TokenId::from_uuid),
                rotated_from: sql::opt_uuid(r.try_get("rotated_from")?)?.map(TokenId::from_uuid),
                created_by: sql::opt_uuid(r.try_get("created_by")?)?.map(UserId::from_uuid),
            })
        }

        fn workspace_vrow(r: &$row) -> Result<Versioned<Workspace>> {
            Ok(Versioned { value: workspace_row(r)?, version: r.try_get("version")? })
        }

        fn user_vrow(r: &$row) -> Result<Versioned<User>> {
            Ok(Versioned { value: user_row(r)?, version: r.try_get("version")? })
        }

        fn role_vrow(r: &$row) -> Result<Versioned<Role>> {
            Ok(Versioned { value: role_row(r)?, version: r.try_get("version")? })
        }

        fn token_vrow(r: &$row) -> Result<Versioned<Token>> {
            Ok(Versioned { value: token_row(r)?, version: r.try_get("version")? })
        }

        fn catalogue_row(r: &$row) -> Result<CatalogueEntry> {
            catalogue_entry(r.try_get("permission")?, r.try_get("description")?)
        }

        /// A workspace's own catalogue entry from its stored permission and description.
        fn catalogue_entry(text: &str, description: String) -> Result<CatalogueEntry> {
            Ok(CatalogueEntry {
                permission: Permission::parse(text)
                    .map_err(|_| StoreError::Internal("corrupt catalogue permission".into()))?,
                description,
                builtin: false,
            })
        }

        /// Sorted here, by bytes: database collations differ between backends.
        fn sort_catalogue(entries: &mut [CatalogueEntry]) {
            entries.sort_by(|a, b| a.permission.as_str().cmp(b.permission.as_str()));
        }

        /// The columns of `load_verification`'s statement with their types: every column of
        /// the token, user, role and workspace rows (each name has one type in every table),
        /// plus the workspace's catalogue as JSON. Each part's row fills its own columns and
        /// leaves the others NULL, so the row decoders above read it as they read their table.
        const VERIFY_COLS: &[(&str, &str)] = &[
            ("id", "TEXT"), ("workspace_id", "TEXT"), ("owner_id", "TEXT"),
            ("role_id", "TEXT"), ("permissions", "TEXT"), ("name", "TEXT"),
            ("metadata", "TEXT"), ("status", "TEXT"), ("hash", "TEXT"), ("start", "TEXT"),
            ("not_before", "BIGINT"), ("expires_at", "BIGINT"), ("ip_allowlist", "TEXT"),
            ("internal_only", "BOOLEAN"), ("rate_limit", "BIGINT"),
            ("rate_limit_per", "TEXT"), ("created_at", "BIGINT"), ("updated_at", "BIGINT"),
            ("revoked_at", "BIGINT"), ("family_id", "TEXT"), ("rotated_from", "TEXT"),
            ("created_by", "TEXT"), ("request_log", "BOOLEAN"), ("kind", "TEXT"),
            ("email", "TEXT"),
            ("disabled", "BOOLEAN"), ("description", "TEXT"), ("scope", "TEXT"),
            ("operator", "BOOLEAN"), ("settings", "TEXT"), ("catalogue", "TEXT"),
        ];

        /// `load_verification`'s one statement: a `UNION ALL` of at most four rows, told
        /// apart by `part`: the token (found by its hash), its owner, the role it acts with
        /// (its own, else its owner's) and its workspace, whose row also carries the
        /// workspace's catalogue aggregated into one JSON text. The workspace's settings (with
        /// an allowlist of thousands of entries) thus travel once, not once per catalogue
        /// entry as a plain join would send them. Every lookup is by primary key (the token's
        /// by its unique hash), through scalar subqueries on the one-row `t`. Built once.
        fn verify_sql() -> &'static str {
            static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            SQL.get_or_init(|| {
                let arm = |part: &str, alias: &str, own: &str, from: &str| {
                    let own: Vec<&str> = own.split(',').map(str::trim).collect();
                    let mut cols = vec![format!("CAST('{part}' AS TEXT) AS part")];
                    for (col, ty) in VERIFY_COLS {
                        let value = if *col == "catalogue" && part == "workspace" {
                            format!(
                                "(SELECT COALESCE(CAST({} AS TEXT), '[]') FROM permissions p \
                                 WHERE p.workspace_id = w.id)",
                                $catalogue_json
                            )
                        } else if own.contains(col) {
                            format!("{alias}.{col}")
                        } else {
                            format!("CAST(NULL AS {ty})")
                        };
                        cols.push(format!("{value} AS {col}"));
                    }
                    format!("SELECT {} FROM {from}", cols.join(", "))
                };
                let arms = [
                    arm("token", "t", TOKEN_COLS, "t"),
                    arm(
                        "owner",
                        "u",
                        USER_COLS,
                        "users u WHERE u.workspace_id = (SELECT workspace_id FROM t) \
                         AND u.id = (SELECT owner_id FROM t)",
                    ),
                    arm(
                        "role",
                        "r",
                        ROLE_COLS,
                        "roles r WHERE r.workspace_id = (SELECT workspace_id FROM t) \
                         AND r.id = (SELECT COALESCE(t.role_id, o.role_id) FROM t \
                         LEFT JOIN users o ON o.workspace_id = t.workspace_id \
                         AND o.id = t.owner_id)",
                    ),
                    arm(
                        "workspace",
                        "w",
                        WS_COLS,
                        "workspaces w WHERE w.id = (SELECT workspace_id FROM t)",
                    ),
                ];
                format!(
                    "WITH t AS (SELECT {TOKEN_COLS} FROM tokens WHERE hash = $1) {}",
                    arms.join(" UNION ALL ")
                )
            })
        }

        /// `load_verification` in one statement ([`verify_sql`]), with the same answers and
        /// errors as the five reads of [`load_verification_by_parts`].
        pub(super) async fn load_verification(
            store: &$store,
            hash: &TokenHash,
        ) -> Result<Option<VerificationRecord>> {
            let rows = sqlx::query(verify_sql())
                .bind(hash.to_hex())
                .fetch_all(store.db()?)
                .await?;
            let (mut token, mut owner, mut role, mut workspace) = (None, None, None, None);
            let mut catalogue = Vec::new();
            for r in &rows {
                let part: &str = r.try_get("part")?;
                match part {
                    "token" => token = Some(token_row(r)?),
                    "owner" => owner = Some(user_row(r)?),
                    "role" => role = Some(role_row(r)?),
                    "workspace" => {
                        workspace = Some(workspace_row(r)?);
                        let pairs: Vec<(String, String)> =
                            sql::parse_json("catalogue", r.try_get("catalogue")?)?;
                        catalogue = pairs
                            .into_iter()
                            .map(|(p, d)| catalogue_entry(&p, d))
                            .collect::<Result<Vec<_>>>()?;
                    }
                    other => {
                        return Err(StoreError::Internal(format!(
                            "unexpected part {other:?} of a verification load"
                        )))
                    }
                }
            }
            let Some(token) = token else {
                return Ok(None);
            };
            let Some(owner) = owner else {
                return Err(StoreError::Internal(format!("token {} has no owner", token.id)));
            };
            let Some(workspace) = workspace else {
                return Err(StoreError::Internal(format!(
                    "token {} has no workspace",
                    token.id
                )));
            };
            sort_catalogue(&mut catalogue);
            Ok(Some(VerificationRecord {
                workspace,
                token,
                owner,
                role,
                catalogue: full_catalogue(catalogue),
            }))
        }

        /// Runs a `SELECT cols FROM table` + filter, decoding each row with `decode`.
        async fn select<T>(
            store: &$store,
            head: String,
            filter: Filter,
            decode: fn(&$row) -> Result<T>,
        ) -> Result<Vec<T>> {
            let sql = format!("{head}{}", filter.sql);
            let mut q = sqlx::query(&sql);
            for a in filter.args {
                q = match a {
                    Arg::Text(s) => q.bind(s),
                    Arg::Int(i) => q.bind(i),
                };
            }
            let rows = q.fetch_all(store.db()?).await?;
            rows.iter().map(decode).collect()
        }

        fn ws_filter(ws: WorkspaceId) -> Filter {
            Filter::new("workspace_id", Arg::Text(ws.uuid().to_string()))
        }

        /// Appends the change's audit event and commits: both or neither.
        async fn commit(
            mut tx: sqlx::Transaction<'_, <$row as sqlx::Row>::Database>,
            chain: &keyward_core::audit::ChainKey,
            audit: &AuditDraft,
        ) -> Result<()> {
            append_audit!(tx, chain, audit)?;
            tx.commit().await?;
            Ok(())
        }

        /// Why a conditional update of `table`'s row `id` (in workspace `ws`, if the table has
        /// one) matched nothing: the row is gone, or it changed since it was read.
        async fn missing_or_stale(
            tx: &mut sqlx::Transaction<'_, <$row as sqlx::Row>::Database>,
            table: &str,
            ws: Option<WorkspaceId>,
            id: String,
        ) -> StoreError {
            let found = match ws {
                Some(ws) => {
                    sqlx::query(&format!(
                        "SELECT 1 AS one FROM {table} WHERE workspace_id = $1 AND id = $2"
                    ))
                    .bind(ws.uuid().to_string())
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await
                }
                None => {
                    sqlx::query(&format!("SELECT 1 AS one FROM {table} WHERE id = $1"))
                        .bind(id)
                        .fetch_optional(&mut **tx)
                        .await
                }
            };
            match found {
                Ok(Some(_)) => stale(),
                Ok(None) => StoreError::NotFound,
                Err(e) => e.into(),
            }
        }

        /// A transaction of this backend.
        pub(super) type Tx<'a> = sqlx::Transaction<'a, <$row as sqlx::Row>::Database>;

        /// `update_workspace`'s conditional update, in `tx` (also used by change requests).
        pub(super) async fn update_workspace_in(
            tx: &mut Tx<'_>,
            v: &Versioned<Workspace>,
        ) -> Result<()> {
            let ws = &v.value;
            let done = sqlx::query(
                "UPDATE workspaces SET name = $1, settings = $2, updated_at = $3, \
                 version = version + 1 WHERE id = $4 AND version = $5",
            )
            .bind(&ws.name)
            .bind(sql::to_json(&ws.settings)?)
            .bind(sql::ms(ws.updated_at))
            .bind(ws.id.uuid().to_string())
            .bind(v.version)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                let id = ws.id.uuid().to_string();
                return Err(missing_or_stale(tx, "workspaces", None, id).await);
            }
            Ok(())
        }

        /// `update_role`'s conditional update, in `tx` (also used by change requests).
        pub(super) async fn update_role_in(tx: &mut Tx<'_>, v: &Versioned<Role>) -> Result<()> {
            let r = &v.value;
            let done = sqlx::query(
                "UPDATE roles SET name = $1, description = $2, scope = $3, permissions = $4, \
                 updated_at = $5, ip_allowlist = $8, rate_limit = $9, version = version + 1, \
                 rate_limit_per = $11 \
                 WHERE workspace_id = $6 AND id = $7 AND version = $10",
            )
            .bind(&r.name)
            .bind(&r.description)
            .bind(r.scope.as_str())
            .bind(sql::patterns_json(&r.permissions))
            .bind(sql::ms(r.updated_at))
            .bind(r.workspace_id.uuid().to_string())
            .bind(r.id.uuid().to_string())
            .bind(sql::to_json(&r.ip_allowlist)?)
            .bind(r.rate_limit_per_minute.map(i64::from))
            .bind(v.version)
            .bind(r.rate_limit_per.as_str())
            .execute(&mut **tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, ROLE_NAME_TAKEN))?;
            if done.rows_affected() == 0 {
                let id = r.id.uuid().to_string();
                return Err(missing_or_stale(tx, "roles", Some(r.workspace_id), id).await);
            }
            Ok(())
        }

        /// `update_token`'s conditional update, in `tx` (also used by change requests).
        pub(super) async fn update_token_in(tx: &mut Tx<'_>, v: &Versioned<Token>) -> Result<()> {
            let t = &v.value;
            let done = sqlx::query(
                // Revocation is final: even a write naming the current version (one that
                // read a revoked token) cannot bring it back.
                "UPDATE tokens SET role_id = $1, permissions = $2, name = $3, metadata = $4, \
                 status = CASE WHEN status = 'revoked' THEN 'revoked' ELSE $5 END, \
                 not_before = $6, expires_at = $7, updated_at = $8, \
                 revoked_at = CASE WHEN status = 'revoked' THEN revoked_at ELSE $9 END, \
                 ip_allowlist = $12, internal_only = $13, rate_limit = $14, \
                 version = version + 1, rate_limit_per = $16, request_log = $17 \
                 WHERE workspace_id = $10 AND id = $11 AND version = $15",
            )
            .bind(t.role_id.map(|r| r.uuid().to_string()))
            .bind(t.permissions.as_deref().map(sql::patterns_json))
            .bind(&t.name)
            .bind(t.metadata.to_string())
            .bind(t.status.as_str())
            .bind(sql::opt_ms(t.not_before))
            .bind(sql::opt_ms(t.expires_at))
            .bind(sql::ms(t.updated_at))
            .bind(sql::opt_ms(t.revoked_at))
            .bind(t.workspace_id.uuid().to_string())
            .bind(t.id.uuid().to_string())
            .bind(sql::to_json(&t.ip_allowlist)?)
            .bind(t.internal_only)
            .bind(t.rate_limit_per_minute.map(i64::from))
            .bind(v.version)
            .bind(t.rate_limit_per.as_str())
            .bind(t.request_log)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                let id = t.id.uuid().to_string();
                return Err(missing_or_stale(tx, "tokens", Some(t.workspace_id), id).await);
            }
            Ok(())
        }

        fn stale() -> StoreError {
            StoreError::conflict(
                CONCURRENT_UPDATE,
                "the object was changed by another request meanwhile; read it again and retry",
            )
        }

        fn one<T>(mut rows: Vec<T>) -> Option<T> {
            rows.pop()
        }

        fn affected(n: u64) -> Result<()> {
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        }

        /// Classifies a delete's error: a foreign-key violation means the row is still in use.
        fn in_use(e: sqlx::Error, code: &'static str, message: &str) -> StoreError {
            match StoreError::from_sqlx(e, None) {
                StoreError::Conflict {
                    code: "REFERENCE_CONFLICT",
                    ..
                } => StoreError::conflict(code, message),
                other => other,
            }
        }

        const EMAIL_TAKEN: Option<(&str, &str)> =
            Some(("EMAIL_TAKEN", "another user of this workspace has this e-mail address"));
        const ROLE_NAME_TAKEN: Option<(&str, &str)> =
            Some(("NAME_TAKEN", "another role of this workspace has this name"));

        macro_rules! insert_role {
            ($exec:expr, $r:expr) => {
                sqlx::query(
                    "INSERT INTO roles (id, workspace_id, name, description, kind, scope, \
                     permissions, created_at, updated_at, ip_allowlist, rate_limit, \
                     rate_limit_per) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind($r.id.uuid().to_string())
                .bind($r.workspace_id.uuid().to_string())
                .bind(&$r.name)
                .bind(&$r.description)
                .bind(sql::role_kind($r.kind))
                .bind($r.scope.as_str())
                .bind(sql::patterns_json(&$r.permissions))
                .bind(sql::ms($r.created_at))
                .bind(sql::ms($r.updated_at))
                .bind(sql::to_json(&$r.ip_allowlist)?)
                .bind($r.rate_limit_per_minute.map(i64::from))
                .bind($r.rate_limit_per.as_str())
                .execute($exec)
                .await
                .map_err(|e| StoreError::from_sqlx(e, ROLE_NAME_TAKEN))
            };
        }

        macro_rules! insert_user {
            ($exec:expr, $u:expr) => {
                sqlx::query(
                    "INSERT INTO users (id, workspace_id, kind, name, email, role_id, disabled, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind($u.id.uuid().to_string())
                .bind($u.workspace_id.uuid().to_string())
                .bind(sql::user_kind($u.kind))
                .bind(&$u.name)
                .bind(&$u.email)
                .bind($u.role_id.map(|r| r.uuid().to_string()))
                .bind($u.disabled)
                .bind(sql::ms($u.created_at))
                .bind(sql::ms($u.updated_at))
                .execute($exec)
                .await
                .map_err(|e| StoreError::from_sqlx(e, EMAIL_TAKEN))
            };
        }

        macro_rules! insert_token {
            ($exec:expr, $t:expr) => {
                insert_token!($exec, $t, None)
            };
            ($exec:expr, $t:expr, $unique:expr) => {
                sqlx::query(
                    "INSERT INTO tokens (id, workspace_id, owner_id, role_id, permissions, name, \
                     metadata, status, hash, start, not_before, expires_at, created_at, \
                     updated_at, revoked_at, ip_allowlist, internal_only, rate_limit, \
                     family_id, rotated_from, created_by, rate_limit_per, request_log) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                     $16, $17, $18, $19, $20, $21, $22, $23)",
                )
                .bind($t.id.uuid().to_string())
                .bind($t.workspace_id.uuid().to_string())
                .bind($t.owner_id.uuid().to_string())
                .bind($t.role_id.map(|r| r.uuid().to_string()))
                .bind($t.permissions.as_deref().map(sql::patterns_json))
                .bind(&$t.name)
                .bind($t.metadata.to_string())
                .bind($t.status.as_str())
                .bind($t.hash.to_hex())
                .bind(&$t.start)
                .bind(sql::opt_ms($t.not_before))
                .bind(sql::opt_ms($t.expires_at))
                .bind(sql::ms($t.created_at))
                .bind(sql::ms($t.updated_at))
                .bind(sql::opt_ms($t.revoked_at))
                .bind(sql::to_json(&$t.ip_allowlist)?)
                .bind($t.internal_only)
                .bind($t.rate_limit_per_minute.map(i64::from))
                .bind($t.family_id.map(|f| f.uuid().to_string()))
                .bind($t.rotated_from.map(|f| f.uuid().to_string()))
                .bind($t.created_by.map(|u| u.uuid().to_string()))
                .bind($t.rate_limit_per.as_str())
                .bind($t.request_log)
                .execute($exec)
                .await
                .map_err(|e| StoreError::from_sqlx(e, $unique))
            };
        }

        #[async_trait]
        impl WorkspaceStore for $store {
            async fn bootstrap_workspace(
                &self,
                b: &WorkspaceBootstrap,
                audit: &AuditDraft,
            ) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                let ws = &b.workspace;
                sqlx::query(
                    "INSERT INTO workspaces (id, name, operator, settings, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(ws.id.uuid().to_string())
                .bind(&ws.name)
                .bind(ws.operator)
                .bind(sql::to_json(&ws.settings)?)
                .bind(sql::ms(ws.created_at))
                .bind(sql::ms(ws.updated_at))
                .execute(&mut *tx)
                .await?;
                insert_role!(&mut *tx, b.role)?;
                for r in &b.extra_roles {
                    insert_role!(&mut *tx, r)?;
                }
                insert_user!(&mut *tx, b.user)?;
                insert_token!(&mut *tx, b.token)?;
                append_audit!(tx, &self.chain, audit)?;
                tx.commit().await?;
                Ok(())
            }

            async fn workspace(&self, id: WorkspaceId) -> Result<Option<Workspace>> {
                let f = Filter::new("id", Arg::Text(id.uuid().to_string()));
                let head = format!("SELECT {WS_COLS} FROM workspaces");
                Ok(one(select(self, head, f, workspace_row).await?))
            }

            async fn list_workspaces(&self, page: &PageRequest) -> Result<Vec<Workspace>> {
                let head = format!("SELECT {WS_COLS} FROM workspaces");
                select(self, head, Filter::default().page(page), workspace_row).await
            }

            async fn workspace_versioned(
                &self,
                id: WorkspaceId,
            ) -> Result<Option<Versioned<Workspace>>> {
                let f = Filter::new("id", Arg::Text(id.uuid().to_string()));
                let head = format!("SELECT {WS_COLS}, version FROM workspaces");
                Ok(one(select(self, head, f, workspace_vrow).await?))
            }

            async fn update_workspace(
                &self,
                v: &Versioned<Workspace>,
                audit: &AuditDraft,
            ) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                update_workspace_in(&mut tx, v).await?;
                commit(tx, &self.chain, audit).await
            }

            async fn count_workspaces(&self) -> Result<u64> {
                let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM workspaces")
                    .fetch_one(self.db()?)
                    .await?
                    .try_get("n")?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
        }

        #[async_trait]
        impl UserStore for $store {
            async fn create_user(&self, user: &User, audit: &AuditDraft) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                insert_user!(&mut *tx, user)?;
                commit(tx, &self.chain, audit).await
            }

            async fn user(&self, ws: WorkspaceId, id: UserId) -> Result<Option<User>> {
                let mut f = ws_filter(ws);
                f.eq("id", Arg::Text(id.uuid().to_string()));
                let head = format!("SELECT {USER_COLS} FROM users");
                Ok(one(select(self, head, f, user_row).await?))
            }

            async fn list_users(
                &self,
                ws: WorkspaceId,
                filter: &UserFilter,
                page: &PageRequest,
            ) -> Result<Vec<User>> {
                let mut f = ws_filter(ws);
                if let Some(kind) = filter.kind {
                    f.eq("kind", Arg::Text(sql::user_kind(kind).into()));
                }
                if let Some(disabled) = filter.disabled {
                    f.and(if disabled { "disabled" } else { "NOT disabled" });
                }
                if let Some(id) = filter.id {
                    f.eq("id", Arg::Text(id.uuid().to_string()));
                }
                let head = format!("SELECT {USER_COLS} FROM users");
                select(self, head, f.page(page), user_row).await
            }

            async fn user_versioned(
                &self,
                ws: WorkspaceId,
                id: UserId,
            ) -> Result<Option<Versioned<User>>> {
                let mut f = ws_filter(ws);
                f.eq("id", Arg::Text(id.uuid().to_string()));
                let head = format!("SELECT {USER_COLS}, version FROM users");
                Ok(one(select(self, head, f, user_vrow).await?))
            }

            async fn update_user(&self, v: &Versioned<User>, audit: &AuditDraft) -> Result<()> {
                let u = &v.value;
                let mut tx = self.db()?.begin().await?;
                let done = sqlx::query(
                    "UPDATE users SET name = $1, email = $2, role_id = $3, disabled = $4, \
                     updated_at = $5, version = version + 1 \
                     WHERE workspace_id = $6 AND id = $7 AND version = $8",
                )
                .bind(&u.name)
                .bind(&u.email)
                .bind(u.role_id.map(|r| r.uuid().to_string()))
                .bind(u.disabled)
                .bind(sql::ms(u.updated_at))
                .bind(u.workspace_id.uuid().to_string())
                .bind(u.id.uuid().to_string())
                .bind(v.version)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, EMAIL_TAKEN))?;
                if done.rows_affected() == 0 {
                    let id = u.id.uuid().to_string();
                    return Err(missing_or_stale(&mut tx, "users", Some(u.workspace_id), id).await);
                }
                commit(tx, &self.chain, audit).await
            }

            async fn delete_user(
                &self,
                ws: WorkspaceId,
                id: UserId,
                audit: &AuditDraft,
            ) -> Result<()> {
                // The delete is the transaction's first statement, no read before it: on SQLite
                // a read-then-write transaction fails at once with "database is locked" while
                // another connection writes. The foreign key from tokens.owner_id refuses the
                // delete while tokens exist; another workspace's user matches no row and is
                // simply not found.
                let mut tx = self.db()?.begin().await?;
                let done = sqlx::query("DELETE FROM users WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.uuid().to_string())
                    .bind(id.uuid().to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        in_use(e, "USER_HAS_TOKENS", "the user owns tokens: delete them first")
                    })?;
                affected(done.rows_affected())?;
                commit(tx, &self.chain, audit).await
            }
        }

        #[async_trait]
        impl RoleStore for $store {
            async fn create_role(&self, role: &Role, audit: &AuditDraft) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                insert_role!(&mut *tx, role)?;
                commit(tx, &self.chain, audit).await
            }

            async fn role(&self, ws: WorkspaceId, id: RoleId) -> Result<Option<Role>> {
                let mut f = ws_filter(ws);
                f.eq("id", Arg::Text(id.uuid().to_string()));
                let head = format!("SELECT {ROLE_COLS} FROM roles");
                Ok(one(select(self, head, f, role_row).await?))
            }

            async fn list_roles(&self, ws: WorkspaceId, page: &PageRequest) -> Result<Vec<Role>> {
                let head = format!("SELECT {ROLE_COLS} FROM roles");
                select(self, head, ws_filter(ws).page(page), role_row).await
            }

            async fn role_versioned(
                &self,
                ws: WorkspaceId,
                id: RoleId,
            ) -> Result<Option<Versioned<Role>>> {
                let mut f = ws_filter(ws);
                f.eq("id", Arg::Text(id.uuid().to_string()));
                let head = format!("SELECT {ROLE_COLS}, version FROM roles");
                Ok(one(select(self, head, f, role_vrow).await?))
            }

            async fn update_role(&self, v: &Versioned<Role>, audit: &AuditDraft) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                update_role_in(&mut tx, v).await?;
                commit(tx, &self.chain, audit).await
            }

            async fn delete_role(
                &self,
                ws: WorkspaceId,
                id: RoleId,
                audit: &AuditDraft,
            ) -> Result<()> {
                // As `delete_user`: the foreign keys from users.role_id and tokens.role_id
                // refuse the delete while the role is in use.
                let mut tx = self.db()?.begin().await?;
                let done = sqlx::query("DELETE FROM roles WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.uuid().to_string())
                    .bind(id.uuid().to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| in_use(e, "ROLE_IN_USE", "users or tokens use this role"))?;
                affected(done.rows_affected())?;
                commit(tx, &self.chain, audit).await
            }
        }

        #[async_trait]
        impl CatalogueStore for $store {
            async fn catalogue(&self, ws: WorkspaceId) -> Result<Vec<CatalogueEntry>> {
                let rows = sqlx::query(
                    "SELECT permission, description FROM permissions WHERE workspace_id = $1",
                )
                .bind(ws.uuid().to_string())
                .fetch_all(self.db()?)
                .await?;
                let mut entries = rows.iter().map(catalogue_row).collect::<Result<Vec<_>>>()?;
                sort_catalogue(&mut entries);
                Ok(entries)
            }

            async fn put_permission(
                &self,
                ws: WorkspaceId,
                e: &CatalogueEntry,
                audit: &AuditDraft,
            ) -> Result<bool> {
                let mut tx = self.db()?.begin().await?;
                let existed = sqlx::query(
                    "UPDATE permissions SET description = $1 \
                     WHERE workspace_id = $2 AND permission = $3",
                )
                .bind(&e.description)
                .bind(ws.uuid().to_string())
                .bind(e.permission.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
                if !existed {
                    sqlx::query(
                        "INSERT INTO permissions (workspace_id, permission, description, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(ws.uuid().to_string())
                    .bind(e.permission.as_str())
                    .bind(&e.description)
                    .bind(audit.at.timestamp_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(|err| {
                        StoreError::from_sqlx(
                            err,
                            Some(("CONFLICT", "the permission was added concurrently")),
                        )
                    })?;
                }
                commit(tx, &self.chain, audit).await?;
                Ok(!existed)
            }

            async fn delete_permission(
                &self,
                ws: WorkspaceId,
                p: &Permission,
                audit: &AuditDraft,
            ) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                let done = sqlx::query(
                    "DELETE FROM permissions WHERE workspace_id = $1 AND permission = $2",
                )
                .bind(ws.uuid().to_string())
                .bind(p.as_str())
                .execute(&mut *tx)
                .await?;
                affected(done.rows_affected())?;
                commit(tx, &self.chain, audit).await
            }
        }

        #[async_trait]
        impl TokenStore for $store {
            async fn create_token(&self, token: &Token, audit: &AuditDraft) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                insert_token!(&mut *tx, token)?;
                commit(tx, &self.chain, audit).await
            }

            async fn token(&self, ws: WorkspaceId, id: TokenId) -> Result<Option<Token>> {
                let mut f = ws_filter(ws);
                f.eq("id", Arg::Text(id.uuid().to_string()));
                let head = format!("SELECT {TOKEN_COLS} FROM tokens");
                Ok(one(select(self, head, f, token_row).await?))
            }

            async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<Token>> {
                let f = Filter::new("hash", Arg::Text(hash.to_hex()));
                let head = format!("SELECT {TOKEN_COLS} FROM tokens");
                Ok(one(select(self, head, f, token_row).await?))
            }

            async fn list_tokens(
                &self,
                ws: WorkspaceId,
                filter: &TokenFilter,
                page: &PageRequest,
            ) -> Result<Vec<Token>> {
                let mut f = ws_filter(ws);
                if let Some(owner) = filter.owner_id {
                    f.eq("owner_id", Arg::Text(owner.uuid().to_string()));
                }
                if let Some(role) = filter.role_id {
                    f.eq("role_id", Arg::Text(role.uuid().to_string()));
                }
                if let Some(status) = filter.status {
                    let now = f.arg(Arg::Int(sql::ms(filter.now)));
                    let live = format!("expires_at IS NULL OR expires_at > {now}");
                    let cond = match status {
                        ShownStatus::Revoked => "status = 'revoked'".to_owned(),
                        ShownStatus::Expired => format!(
                            "status <> 'revoked' AND expires_at IS NOT NULL AND expires_at <= {now}"
                        ),
                        ShownStatus::Pending => format!("status = 'pending' AND ({live})"),
                        ShownStatus::Active => format!("status = 'active' AND ({live})"),
                    };
                    f.and(&cond);
                }
                let head = format!("SELECT {TOKEN_COLS} FROM tokens");
                select(self, head, f.page(page), token_row).await
            }

            async fn token_versioned(
                &self,
                ws: WorkspaceId,
                id: TokenId,
            ) -> Result<Option<Versioned<Token>>> {
                let mut f = ws_filter(ws);
                f.eq("id", Arg::Text(id.uuid().to_string()));
                let head = format!("SELECT {TOKEN_COLS}, version FROM tokens");
                Ok(one(select(self, head, f, token_vrow).await?))
            }

            async fn update_token(&self, v: &Versioned<Token>, audit: &AuditDraft) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                update_token_in(&mut tx, v).await?;
                commit(tx, &self.chain, audit).await
            }

            async fn revoke_token(
                &self,
                ws: WorkspaceId,
                id: TokenId,
                at: chrono::DateTime<chrono::Utc>,
                audit: &AuditDraft,
            ) -> Result<bool> {
                // Column-wise: only the status and its times change, so a revocation racing a
                // PATCH or a rotation neither undoes it nor is undone (the others are
                // conditional on the version this bumps).
                let mut tx = self.db()?.begin().await?;
                let done = sqlx::query(
                    "UPDATE tokens SET status = 'revoked', revoked_at = $1, updated_at = $1, \
                     version = version + 1 \
                     WHERE workspace_id = $2 AND id = $3 AND status <> 'revoked'",
                )
                .bind(sql::ms(at))
                .bind(ws.uuid().to_string())
                .bind(id.uuid().to_string())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return match missing_or_stale(&mut tx, "tokens", Some(ws), id.uuid().to_string())
                        .await
                    {
                        // Still there, so already revoked.
                        StoreError::Conflict { code: CONCURRENT_UPDATE, .. } => Ok(false),
                        other => Err(other),
                    };
                }
                commit(tx, &self.chain, audit).await?;
                Ok(true)
            }

            async fn rotate_token(
                &self,
                v: &Versioned<Token>,
                new: &Token,
                audit: &AuditDraft,
            ) -> Result<()> {
                let old = &v.value;
                let mut tx = self.db()?.begin().await?;
                // Only the token as read, not revoked meanwhile, is cut short; the update comes
                // first, so it also takes the row (and, on SQLite, the write lock) before the
                // insert.
                let done = sqlx::query(
                    "UPDATE tokens SET expires_at = $1, updated_at = $2, version = version + 1 \
                     WHERE workspace_id = $3 AND id = $4 AND status <> 'revoked' AND version = $5",
                )
                .bind(sql::opt_ms(old.expires_at))
                .bind(sql::ms(old.updated_at))
                .bind(old.workspace_id.uuid().to_string())
                .bind(old.id.uuid().to_string())
                .bind(v.version)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    let revoked: Option<String> = sqlx::query(
                        "SELECT status FROM tokens WHERE workspace_id = $1 AND id = $2",
                    )
                    .bind(old.workspace_id.uuid().to_string())
                    .bind(old.id.uuid().to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get("status"))
                    .transpose()?;
                    return Err(match revoked.as_deref() {
                        None | Some("revoked") => StoreError::conflict(
                            "TOKEN_REVOKED",
                            "the token was revoked or deleted meanwhile",
                        ),
                        Some(_) => stale(),
                    });
                }
                insert_token!(
                    &mut *tx,
                    new,
                    Some(("ALREADY_ROTATED", "this token has already been replaced"))
                )?;
                commit(tx, &self.chain, audit).await
            }

            async fn token_family(&self, ws: WorkspaceId, family: TokenId) -> Result<Vec<Token>> {
                let mut f = ws_filter(ws);
                let p = f.arg(Arg::Text(family.uuid().to_string()));
                f.and(&format!("id = {p} OR family_id = {p}"));
                f.sql.push_str(" ORDER BY created_at, id");
                let head = format!("SELECT {TOKEN_COLS} FROM tokens");
                Ok(sql::rotation_order(select(self, head, f, token_row).await?))
            }

            async fn delete_token(
                &self,
                ws: WorkspaceId,
                id: TokenId,
                audit: &AuditDraft,
            ) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                let done = sqlx::query("DELETE FROM tokens WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.uuid().to_string())
                    .bind(id.uuid().to_string())
                    .execute(&mut *tx)
                    .await?;
                affected(done.rows_affected())?;
                commit(tx, &self.chain, audit).await
            }
        }
        }
    };
}
