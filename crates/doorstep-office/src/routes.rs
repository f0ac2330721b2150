//! Every route the office serves, in one table that [`router`] is built from, so the list of routes and
//! what each requires cannot drift apart.
//!
//! Each route declares who may call it ([`Access`]), and its handler must agree: [`Route::get`] and
//! [`Route::post`] accept a handler only if its first argument is a [`Guard`] (a role extractor from
//! [`crate::web::extract`], or the phone's device token), and a POST only if its last argument is a
//! [`CsrfChecked`] form; the guard's own access is kept beside the declared one, and a test below checks
//! that they are the same for every route. Only [`Route::public_get`] and [`Route::sign_in`] take a handler without a guard, and a
//! test lists the public routes by name. `tests/it/routes.rs` walks [`table`] against the running office:
//! every route refuses a request without a session (or device token) and the wrong role, and every POST a
//! request without a valid CSRF token.

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::http::{header, HeaderValue};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use doorstep_core::protocol::MAX_BODY_BYTES;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;
use crate::{api, web};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the sign-in page, the dashboard's assets, health, the OpenAPI document, and a phone
    /// redeeming an enrolment code.
    Public,
    /// An enrolled phone, by its device token (`Authorization: Bearer`); no cookies, so no CSRF.
    Phone,
    /// Anyone signed in.
    SignedIn,
    /// The office, the policy's authoriser and admins; signed out, the sign-in page.
    Board,
    /// As [`Access::Board`], for the board's script: signed out is a 401.
    BoardLive,
    /// Board users and visiting staff.
    Requester,
    /// Board users with a need to know what visits found: the DSL, the authoriser and admins
    /// ([`crate::logins::OfficeUser::may_read_records`]); not reception.
    Records,
    /// The audit log's readers: admins and the DSL.
    AuditLog,
    /// The policy's authoriser only.
    Authoriser,
    /// Admins only.
    Admin,
}

/// An extractor that decides who may call a handler; [`Route`] records its [`Access`].
pub trait Guard {
    const ACCESS: Access;
}

/// A guard that reads a device token rather than a session cookie: a POST behind it needs no CSRF token.
pub trait DeviceToken: Guard {}

/// A form extractor that refuses a token other than the session's.
pub trait CsrfChecked {}

/// The argument types of a handler, as axum's [`Handler`] sees them: `(M, T1, ..., Tn)`.
pub trait Arguments {
    type First;
    type Last;
}

macro_rules! arguments {
    ($first:ident) => {
        impl<M, $first> Arguments for (M, $first) {
            type First = $first;
            type Last = $first;
        }
    };
    ($first:ident, $($rest:ident),* ; $last:ident) => {
        impl<M, $first, $($rest,)*> Arguments for (M, $first, $($rest,)*) {
            type First = $first;
            type Last = $last;
        }
    };
}

arguments!(T1);
arguments!(T1, T2; T2);
arguments!(T1, T2, T3; T3);
arguments!(T1, T2, T3, T4; T4);
arguments!(T1, T2, T3, T4, T5; T5);
arguments!(T1, T2, T3, T4, T5, T6; T6);

/// How a POST proves it came from the office's own page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfCheck {
    /// The session's token in the form ([`crate::web::extract::CsrfForm`]).
    SessionToken,
    /// The sign-in form's double-submit token: a cookie and the same value in the form.
    SignInCookie,
}

/// One method on one path, and what it requires.
pub struct Route {
    pub method: Method,
    /// As axum writes it: `/visits/{id}`.
    pub path: &'static str,
    /// Who may call it, as the table says.
    pub access: Access,
    /// Who may call it, as the handler's guard says (`Access::Public` when it has none).
    pub guarded: Access,
    /// For a POST, how it is protected from other sites' forms; `None` for a GET or a device's POST.
    pub csrf: Option<CsrfCheck>,
    handler: MethodRouter<AppState>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("access", &self.access)
            .field("guarded", &self.guarded)
            .field("csrf", &self.csrf)
            .finish_non_exhaustive()
    }
}

impl Route {
    fn new(
        method: Method,
        path: &'static str,
        (access, guarded): (Access, Access),
        csrf: Option<CsrfCheck>,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self {
            method,
            path,
            access,
            guarded,
            csrf,
            handler,
        }
    }

    /// A GET whose handler's first argument decides who may call it.
    fn get<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: Arguments + 'static,
        T::First: Guard,
    {
        let access = (access, <T::First as Guard>::ACCESS);
        Self::new(Method::GET, path, access, None, get(handler))
    }

    /// A POST of a signed-in person: a guard first, a CSRF-checked form last.
    fn post<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: Arguments + 'static,
        T::First: Guard,
        T::Last: CsrfChecked,
    {
        let access = (access, <T::First as Guard>::ACCESS);
        let csrf = Some(CsrfCheck::SessionToken);
        Self::new(Method::POST, path, access, csrf, post(handler))
    }

    /// A POST of a phone, by its device token.
    fn device_post<H, T>(path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: Arguments + 'static,
        T::First: DeviceToken,
    {
        let access = (Access::Phone, <T::First as Guard>::ACCESS);
        Self::new(Method::POST, path, access, None, post(handler))
    }

    /// A page anyone may see. Each public route is named in the test below.
    fn public_get<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        let access = (Access::Public, Access::Public);
        Self::new(Method::GET, path, access, None, get(handler))
    }

    /// A phone's POST before it has a device token: enrolment, which is its own proof (a one-time code,
    /// throttled by address). Each public route is named in the test below.
    fn public_post<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        let access = (Access::Public, Access::Public);
        Self::new(Method::POST, path, access, None, post(handler))
    }

    /// The sign-in form's POST: public, protected by its double-submit token.
    fn sign_in<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        let access = (Access::Public, Access::Public);
        let csrf = Some(CsrfCheck::SignInCookie);
        Self::new(Method::POST, path, access, csrf, post(handler))
    }
}

/// Every route the office serves.
pub fn table() -> Vec<Route> {
    use web::{
        admin, assets, attendance, audit, auth, authorise, board, briefing, decisions, records,
        requests, visit,
    };
    use Access::{Admin, AuditLog, Authoriser, Board, BoardLive, Records, Requester, SignedIn};
    vec![
        // The phones' API.
        Route::device_post("/api/v1/sync", api::sync),
        Route::device_post("/api/v1/reconcile", crate::reconcile::reconcile),
        // The SMS gateway's webhook: no session or device token, its own HMAC signature (`sms.rs`).
        Route::public_post("/api/v1/sms/inbound", crate::sms::inbound),
        Route::public_post("/api/v1/enrol", api::enrol),
        Route::public_get("/api/v1/health", api::health),
        Route::public_get("/api/v1/openapi.json", api::openapi),
        // Signing in and out.
        Route::public_get("/login", auth::login_page),
        Route::sign_in("/login", auth::login),
        Route::post("/logout", SignedIn, auth::logout),
        Route::public_get("/assets/{file}", assets::asset),
        // The board and the visits on it.
        Route::get("/", Board, board::board_page),
        Route::get("/board/fragment", BoardLive, board::fragment),
        Route::get("/board/events", BoardLive, board::events),
        Route::post("/alarms/{id}/acknowledge", Board, board::acknowledge),
        Route::post("/alarms/{id}/close", Board, board::close),
        Route::get("/visits/{id}", Board, visit::visit_page),
        Route::post("/visits/{id}/duress-heard", Board, visit::duress_heard),
        // Requesting and authorising visits; attendance.
        Route::get("/visits/new", Requester, requests::new_visit_page),
        Route::post("/visits/new", Requester, requests::request_visit),
        Route::get(
            "/visits/{id}/authorise",
            Authoriser,
            authorise::authorise_page,
        ),
        Route::post("/visits/{id}/authorise", Authoriser, authorise::authorise),
        // The office runs the visit: each decision a new version of it.
        Route::post("/visits/{id}/decline", Authoriser, decisions::decline),
        Route::post("/visits/{id}/withdraw", Authoriser, decisions::withdraw),
        Route::post("/visits/{id}/call-off", Board, decisions::call_off),
        Route::post("/visits/{id}/reschedule", Authoriser, decisions::reschedule),
        Route::get("/visits/{id}/briefing", Authoriser, briefing::briefing_page),
        Route::post(
            "/visits/{id}/briefing",
            Authoriser,
            briefing::update_briefing,
        ),
        Route::get("/attendance", Board, attendance::attendance),
        Route::post("/attendance/concerns", Board, attendance::set_concern),
        // Records and reports.
        Route::get("/visits/{id}/timeline", Records, records::timeline_page),
        Route::get("/visits/{id}/cpoms.txt", Records, records::cpoms_txt),
        Route::get("/visits/{id}/cpoms.pdf", Records, records::cpoms_pdf_route),
        Route::get("/reports/write-ups.csv", Records, records::write_ups),
        Route::get("/reports/monthly", Records, records::monthly),
        Route::get("/audit", AuditLog, audit::audit_page),
        // Admin.
        Route::get("/admin/staff", Admin, admin::staff::staff_list),
        Route::post("/admin/staff", Admin, admin::staff::save_staff),
        // `{kind}`: pupils or absences.
        Route::get("/admin/import/{kind}", Admin, admin::imports::import_page),
        Route::post("/admin/import/{kind}", Admin, admin::imports::import),
        Route::get("/admin/policy", Admin, admin::policy::policy_get),
        Route::post("/admin/policy", Admin, admin::policy::policy_post),
        Route::post("/admin/time-zone", Admin, admin::policy::time_zone_post),
        Route::get(
            "/admin/notifications",
            Admin,
            admin::notifications::notifications_page,
        ),
        Route::post(
            "/admin/notifications",
            Admin,
            admin::notifications::add_target,
        ),
        Route::post(
            "/admin/notifications/{id}/remove",
            Admin,
            admin::notifications::remove_target,
        ),
        Route::get("/admin/devices", Admin, admin::devices::devices_list),
        Route::post("/admin/devices/codes", Admin, admin::devices::issue_code),
        // `{id}`: a device id.
        Route::post("/admin/devices/{id}/revoke", Admin, admin::devices::revoke),
    ]
}

/// Every route the office serves, built from [`table`]. Tests call this without a socket.
pub fn router(state: AppState) -> Router {
    // Served over HTTPS (the office's own or a proxy's; plain HTTP only for a demo): browsers that have
    // seen the board once never try it over plain HTTP again.
    let hsts = state.web.secure_cookies.then(|| {
        SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        )
    });
    table()
        .into_iter()
        .fold(Router::new(), |router, route| {
            // Checked for every route by the unit test below; here too, so a test build never serves one
            // whose handler takes a weaker guard than the table says.
            debug_assert_eq!(route.access, route.guarded, "{route:?}");
            router.route(route.path, route.handler)
        })
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::admit_syncs,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower::util::option_layer(hsts))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handler_requires_the_role_its_route_declares() {
        for route in table() {
            assert_eq!(route.access, route.guarded, "{route:?}");
        }
    }

    #[test]
    fn the_public_routes_are_only_these() {
        let public: Vec<(Method, &str)> = table()
            .into_iter()
            .filter(|route| route.access == Access::Public)
            .map(|route| (route.method, route.path))
            .collect();
        assert_eq!(
            public,
            [
                (Method::POST, "/api/v1/sms/inbound"),
                (Method::POST, "/api/v1/enrol"),
                (Method::GET, "/api/v1/health"),
                (Method::GET, "/api/v1/openapi.json"),
                (Method::GET, "/login"),
                (Method::POST, "/login"),
                (Method::GET, "/assets/{file}"),
            ]
        );
    }

    #[test]
    fn every_post_but_a_phones_checks_a_csrf_token_and_no_get_does() {
        for route in table() {
            match (&route.method, route.access) {
                (&Method::POST, Access::Phone) => assert_eq!(route.csrf, None, "{route:?}"),
                // Enrolment: no cookies are involved, so no other site's form can ride on a session.
                // The SMS gateway signs its own requests, and sends no cookies either.
                (&Method::POST, Access::Public)
                    if ["/api/v1/enrol", "/api/v1/sms/inbound"].contains(&route.path) =>
                {
                    assert_eq!(route.csrf, None, "{route:?}")
                }
                (&Method::POST, _) => assert!(route.csrf.is_some(), "{route:?}"),
                _ => assert_eq!(route.csrf, None, "{route:?}"),
            }
        }
    }

    #[test]
    fn each_method_and_path_is_in_the_table_once() {
        let routes = table();
        for (i, route) in routes.iter().enumerate() {
            assert!(
                !routes[..i]
                    .iter()
                    .any(|r| r.method == route.method && r.path == route.path),
                "{route:?} twice"
            );
        }
    }
}
